// Input images for image-to-video (--image, --last-image; batch items' image /
// last_image): read from disk, checked, decoded with OpenCV and converted to RGB
// the way the Wan reference does it (PIL's Image.open(path).convert("RGB")):
//   - grayscale is replicated into R, G and B; an alpha channel is dropped (no
//     compositing onto a background); a palette image takes its palette colours;
//   - 16-bit RGB(A) keeps the high byte of each sample; 16-bit grayscale is
//     clipped to 255 (what PIL does with its "I;16" mode);
//   - EXIF orientation is ignored (PIL's Image.open does not apply it).
// The size is read from the file header and checked BEFORE decoding, so a
// 30000x30000 image is refused without allocating its pixels.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/tensor.h"

namespace t2v {

struct InputImage {
  int width = 0, height = 0;
  std::vector<uint8_t> rgb;  // [height, width, 3] RGB24, row-major
  std::string path;          // where it was read from (for messages)
};

// Bounds on what is accepted (docs/bad_inputs.md #85-88).
struct ImageLimits {
  int min_side = 16;                // a 1x1 "image" has nothing to condition on
  int max_side = 16384;             // per side
  int64_t max_pixels = 64'000'000;  // width x height: 64 MP, 192 MB of RGB24
  int64_t max_file_bytes = int64_t{512} << 20;
};

// Reads `path` (PNG, JPEG, WebP or BMP). Errors, each one line naming the file:
//   66  the file does not exist, cannot be opened (permissions), or is a folder, a
//       FIFO, a device or a socket (refused without blocking; symlinks are followed);
//   74  a read error part-way;
//   65  not an image in a supported format, a corrupt or truncated image, or a
//       size outside `limits` (checked from the header, before decoding).
// `what` names the option in messages ("--image", "--last-image", "item 3 image").
InputImage load_rgb_image(const std::string& path, const std::string& what = "image",
                        const ImageLimits& limits = {});

// The image as the reference feeds it to the models: [3, H, W] F32 on the CPU,
// x/255 then (x - 0.5)/0.5, i.e. in [-1, 1] (TF.to_tensor(img).sub_(0.5).div_(0.5)).
Tensor rgb_image_to_tensor(const InputImage& image);

// The width and height a PNG, JPEG, WebP or BMP header declares, without decoding;
// false when the bytes are none of these (or the header is cut short).
bool image_header_size(const std::vector<uint8_t>& bytes, int64_t* width, int64_t* height, std::string* format);

}  // namespace t2v
