#include "app/video_sink.h"

#include <chrono>
#include <filesystem>

#include "core/safetensors.h"
#include "video_io/preview.h"

namespace t2v {

VideoSink::VideoSink(const RenderRequest& r, const nlohmann::json& settings)
    : output_(r.output), dump_path_(r.frames_dump), width_(r.width), height_(r.height), fps_(r.fps),
      keep_frames_(r.preview) {
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
  save_safetensors(dump_path_, {{"frames", Tensor::from_floats(unit_, {frames_, height_, width_, 3})}});
}

void VideoSink::finish(const nlohmann::json* settings) {
  if (settings) writer_.set_metadata("t2v", settings->dump());
  writer_.finish();
}

void VideoSink::write_previews() const {
  const std::string base = std::filesystem::path(output_).replace_extension("").string();
  std::vector<RgbImage> views = frames_view(kept_.data(), frames_, width_, height_);
  ContactSheetOptions cs;
  cs.overwrite = true;
  write_contact_sheet(base + ".png", views, cs);
  GifOptions go;
  go.overwrite = true;
  write_animated_gif(base + ".gif", views, fps_, go);
}

}  // namespace t2v
