#include "video_io/mp4_reader.h"

#include <cerrno>
#include <cstdio>
#include <cstring>

#include <fmt/format.h>

extern "C" {
#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/pixdesc.h>
#include <libswscale/swscale.h>
}

#include "core/error.h"
#include "video_io/ffmpeg_util.h"

namespace t2v {

struct Mp4Reader::Impl {
  std::string path;
  VideoInfo info;
  AVFormatContext* fmt = nullptr;
  AVCodecContext* dec = nullptr;
  int stream_index = -1;
  AVPacket* packet = nullptr;
  AVFrame* frame = nullptr;
  SwsContext* sws = nullptr;
  int sws_format = -1, sws_width = 0, sws_height = 0;  // what the sws context was made for
  bool draining = false, done = false;

  ~Impl() {
    sws_freeContext(sws);
    av_frame_free(&frame);
    av_packet_free(&packet);
    avcodec_free_context(&dec);
    avformat_close_input(&fmt);
  }

  [[noreturn]] void fail_decode(int err) {
    throw Error(kExitDataErr, fmt::format("cannot decode '{}': {}", path, av_error_text(err)),
                "the file is damaged or not a video");
  }

  // Converts the decoded `frame` to packed RGB24 with the matrix/range it is tagged with.
  void convert(std::vector<uint8_t>& rgb) {
    const int w = frame->width, h = frame->height;
    if (!sws || sws_format != frame->format || sws_width != w || sws_height != h) {
      // Bicubic chroma upsampling at full horizontal resolution, as players do.
      sws_freeContext(sws);
      sws = sws_getContext(w, h, static_cast<AVPixelFormat>(frame->format), w, h, AV_PIX_FMT_RGB24,
                           SWS_BICUBIC | SWS_ACCURATE_RND | SWS_FULL_CHR_H_INT | SWS_BITEXACT, nullptr, nullptr, nullptr);
      T2V_ASSERT(sws, "swscale cannot convert {} to rgb24",
                 av_get_pix_fmt_name(static_cast<AVPixelFormat>(frame->format)));
      sws_format = frame->format;
      sws_width = w;
      sws_height = h;
      int space = SWS_CS_ITU601;  // FFmpeg's assumption for untagged video
      switch (frame->colorspace) {
        case AVCOL_SPC_BT709: space = SWS_CS_ITU709; break;
        case AVCOL_SPC_FCC: space = SWS_CS_FCC; break;
        case AVCOL_SPC_SMPTE240M: space = SWS_CS_SMPTE240M; break;
        case AVCOL_SPC_BT2020_NCL:
        case AVCOL_SPC_BT2020_CL: space = SWS_CS_BT2020; break;
        default: break;
      }
      const AVPixFmtDescriptor* desc = av_pix_fmt_desc_get(static_cast<AVPixelFormat>(frame->format));
      bool full = frame->color_range == AVCOL_RANGE_JPEG || (desc && std::strncmp(desc->name, "yuvj", 4) == 0);
      const int* coeffs = sws_getCoefficients(space);
      // Returns -1 for RGB/palette sources, where matrix and range do not apply.
      sws_setColorspaceDetails(sws, coeffs, full ? 1 : 0, coeffs, /*dstRange=*/1, 0, 1 << 16, 1 << 16);
    }
    rgb.resize(static_cast<size_t>(w) * h * 3);
    uint8_t* dst[1] = {rgb.data()};
    const int dst_stride[1] = {w * 3};
    sws_scale(sws, frame->data, frame->linesize, 0, h, dst, dst_stride);
  }
};

std::string mp4_structure_problem(const std::string& path) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) return fmt::format("cannot open: {}", std::strerror(errno));
  std::fseek(f, 0, SEEK_END);
  const int64_t file_size = std::ftell(f);
  int64_t pos = 0;
  bool moov = false, mdat = false;
  std::string problem;
  while (pos < file_size) {
    uint8_t h[16];
    if (file_size - pos < 8 || std::fseek(f, pos, SEEK_SET) != 0 || std::fread(h, 1, 8, f) != 8) {
      problem = fmt::format("{} stray bytes at the end", file_size - pos);
      break;
    }
    uint64_t size = (uint64_t{h[0]} << 24) | (uint64_t{h[1]} << 16) | (uint64_t{h[2]} << 8) | h[3];
    const std::string type(reinterpret_cast<const char*>(h + 4), 4);
    if (size == 1) {  // 64-bit largesize follows the type
      if (std::fread(h + 8, 1, 8, f) != 8) {
        problem = fmt::format("box '{}' at byte {} is cut short", type, pos);
        break;
      }
      size = 0;
      for (int i = 8; i < 16; ++i) size = (size << 8) | h[i];
    } else if (size == 0) {  // extends to the end of the file
      size = static_cast<uint64_t>(file_size - pos);
    }
    if (pos == 0 && type != "ftyp") {
      problem = fmt::format("starts with '{}', not 'ftyp'", type);
      break;
    }
    if (size < 8 || size > static_cast<uint64_t>(file_size - pos)) {
      problem = fmt::format("box '{}' at byte {} claims {} bytes but the file ends at {} (truncated)", type, pos, size,
                            file_size);
      break;
    }
    moov = moov || type == "moov";
    mdat = mdat || type == "mdat";
    pos += static_cast<int64_t>(size);
  }
  std::fclose(f);
  if (problem.empty() && file_size == 0) problem = "empty file";
  if (problem.empty() && !moov) problem = "no 'moov' box (the index was never written)";
  if (problem.empty() && !mdat) problem = "no 'mdat' box";
  return problem;
}

Mp4Reader::Mp4Reader() : impl_(std::make_unique<Impl>()) {}
Mp4Reader::~Mp4Reader() = default;

void Mp4Reader::open(const std::string& path) {
  Impl& m = *impl_;
  T2V_ASSERT(m.fmt == nullptr, "Mp4Reader::open called twice");
  quiet_ffmpeg_logs();
  m.path = path;
  int ret = avformat_open_input(&m.fmt, path.c_str(), nullptr, nullptr);
  if (ret < 0) {
    if (ret == AVERROR(ENOENT) || ret == AVERROR(EACCES) || ret == AVERROR(EISDIR))
      throw Error(kExitNoInput, fmt::format("cannot open '{}': {}", path, av_error_text(ret)),
                  "check the path and its permissions");
    m.fail_decode(ret);
  }
  ret = avformat_find_stream_info(m.fmt, nullptr);
  if (ret < 0) m.fail_decode(ret);
  const AVCodec* codec = nullptr;
  m.stream_index = av_find_best_stream(m.fmt, AVMEDIA_TYPE_VIDEO, -1, -1, &codec, 0);
  if (m.stream_index < 0 || !codec)
    throw Error(kExitDataErr, fmt::format("'{}' has no decodable video stream", path), "pass a video file");
  AVStream* st = m.fmt->streams[m.stream_index];
  m.dec = avcodec_alloc_context3(codec);
  T2V_ASSERT(m.dec, "out of memory");
  ret = avcodec_parameters_to_context(m.dec, st->codecpar);
  T2V_ASSERT(ret >= 0, "avcodec_parameters_to_context: {}", av_error_text(ret));
  // One thread: decoding order and output are then identical on every machine.
  m.dec->thread_count = 1;
  ret = avcodec_open2(m.dec, codec, nullptr);
  if (ret < 0) m.fail_decode(ret);
  m.packet = av_packet_alloc();
  m.frame = av_frame_alloc();
  T2V_ASSERT(m.packet && m.frame, "out of memory");

  VideoInfo& info = m.info;
  info.format_name = m.fmt->iformat->name;
  info.codec_name = avcodec_get_name(st->codecpar->codec_id);
  const char* profile = avcodec_profile_name(st->codecpar->codec_id, st->codecpar->profile);
  info.profile = profile ? profile : "";
  const char* pix = av_get_pix_fmt_name(static_cast<AVPixelFormat>(st->codecpar->format));
  info.pix_fmt = pix ? pix : "";
  info.width = st->codecpar->width;
  info.height = st->codecpar->height;
  info.fps = Rational{st->avg_frame_rate.num, st->avg_frame_rate.den};
  info.frame_count = st->nb_frames;
  if (st->duration != AV_NOPTS_VALUE)
    info.duration_s = static_cast<double>(st->duration) * av_q2d(st->time_base);
  else if (m.fmt->duration != AV_NOPTS_VALUE)
    info.duration_s = static_cast<double>(m.fmt->duration) / AV_TIME_BASE;
  info.color_primaries = av_color_primaries_name(st->codecpar->color_primaries);
  info.color_trc = av_color_transfer_name(st->codecpar->color_trc);
  info.color_space = av_color_space_name(st->codecpar->color_space);
  info.color_range = av_color_range_name(st->codecpar->color_range);
  const AVDictionaryEntry* tag = nullptr;
  while ((tag = av_dict_get(m.fmt->metadata, "", tag, AV_DICT_IGNORE_SUFFIX))) info.metadata[tag->key] = tag->value;
}

const VideoInfo& Mp4Reader::info() const { return impl_->info; }

bool Mp4Reader::read_frame(std::vector<uint8_t>& rgb) {
  Impl& m = *impl_;
  T2V_ASSERT(m.dec != nullptr, "Mp4Reader::read_frame before open()");
  while (!m.done) {
    int ret = avcodec_receive_frame(m.dec, m.frame);
    if (ret >= 0) {
      m.convert(rgb);
      av_frame_unref(m.frame);
      return true;
    }
    if (ret == AVERROR_EOF) {
      m.done = true;
      break;
    }
    if (ret != AVERROR(EAGAIN)) m.fail_decode(ret);
    if (m.draining) {  // EAGAIN after the flush packet would be a decoder bug
      m.done = true;
      break;
    }
    // The decoder wants input: feed the next packet of our stream, or the flush packet.
    for (;;) {
      ret = av_read_frame(m.fmt, m.packet);
      if (ret == AVERROR_EOF) {
        avcodec_send_packet(m.dec, nullptr);
        m.draining = true;
        break;
      }
      if (ret < 0) m.fail_decode(ret);
      if (m.packet->stream_index != m.stream_index) {
        av_packet_unref(m.packet);
        continue;
      }
      ret = avcodec_send_packet(m.dec, m.packet);
      av_packet_unref(m.packet);
      if (ret < 0) m.fail_decode(ret);
      break;
    }
  }
  return false;
}

std::vector<std::vector<uint8_t>> Mp4Reader::read_all_frames() {
  std::vector<std::vector<uint8_t>> frames;
  std::vector<uint8_t> rgb;
  while (read_frame(rgb)) frames.push_back(rgb);
  return frames;
}

}  // namespace t2v
