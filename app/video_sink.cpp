#include "app/video_sink.h"

#include <unistd.h>

#include <chrono>
#include <filesystem>

#include "core/safetensors.h"
#include "video_io/preview.h"

namespace t2v {

VideoSink::VideoSink(const RenderRequest& r, const nlohmann::json& settings)
    : output_(r.output), dump_path_(r.frames_dump), width_(r.width), height_(r.height), fps_(r.fps),
      keep_frames_(r.preview), overwrite_(r.overwrite), preview_overwrite_(r.overwrite || r.preview_overwrite) {
  Mp4Options mo;
  mo.crf = r.crf;
  mo.overwrite = r.overwrite;
  mo.metadata["t2v"] = settings.dump();
  mo.metadata["comment"] = r.prompt;
  writer_.open(r.output, width_, height_, r.fps, mo);
}

void VideoSink::add_frame(const uint8_t* rgb, const float* unit) {
  const size_t n = static_cast<size_t>(width_) * height_ * 3;
  if (wants_unit_frames()) unit_.insert(unit_.end(), unit, unit + n);
  const auto t0 = std::chrono::steady_clock::now();
  writer_.write_frame(rgb, static_cast<int64_t>(width_) * 3);
  mux_s_ += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (keep_frames_) kept_.insert(kept_.end(), rgb, rgb + n);
  ++frames_;
}

void VideoSink::save_frames_dump() const {
  save_safetensors(dump_path_, {{"frames", Tensor::from_floats(unit_, {frames_, height_, width_, 3})}}, {},
                   overwrite_);
}

void VideoSink::finish(const nlohmann::json* settings) {
  // The MP4 goes last: were it first, a failed preview would leave it in place and the rerun
  // that the exit code (74) asks for would stop at "already exists".
  std::vector<std::string> placed;
  try {
    if (wants_unit_frames()) {
      save_frames_dump();
      placed.push_back(dump_path_);
    }
    if (keep_frames_) {
      const std::string base = preview_base(output_);
      std::vector<RgbImage> views = frames_view(kept_.data(), frames_, width_, height_);
      ContactSheetOptions cs;
      cs.overwrite = preview_overwrite_;
      write_contact_sheet(base + ".png", views, cs);
      placed.push_back(base + ".png");
      GifOptions go;
      go.overwrite = preview_overwrite_;
      write_animated_gif(base + ".gif", views, fps_, go);
      placed.push_back(base + ".gif");
    }
    if (settings) writer_.set_metadata("t2v", settings->dump());
    writer_.finish();
  } catch (...) {
    for (const std::string& p : placed) ::unlink(p.c_str());
    throw;
  }
}

std::string preview_base(const std::string& output) {
  return std::filesystem::path(output).replace_extension("").string();
}

}  // namespace t2v
