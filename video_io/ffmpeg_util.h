// Small helpers shared by the FFmpeg-based reader and writer.
#pragma once

#include <string>

namespace t2v {

// av_strerror text for an AVERROR code.
std::string av_error_text(int err);

// FFmpeg and x264 print banners and statistics at AV_LOG_INFO; t2v keeps its own output
// readable by showing only warnings and errors (once per process).
void quiet_ffmpeg_logs();

}  // namespace t2v
