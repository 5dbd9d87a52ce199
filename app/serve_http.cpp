// The HTTP side of `t2v serve` on cpp-httplib: the OpenAI Videos routes, bearer-key
// authentication, the 1 MB body limit, byte ranges for downloads, and every error as
// {"error": {"message", "type", "param", "code"}}.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <memory>
#include <optional>
#include <tuple>

#include <fmt/format.h>
#include <httplib.h>
#include <spdlog/spdlog.h>

#include "app/serve_request.h"
#include "app/serve_state.h"
#include "app/sha256.h"
#include "core/error.h"
#include "serve_page.h"
#include "video_io/frame_rate.h"

namespace t2v {

using httplib::Request;
using httplib::Response;
using nlohmann::json;

namespace {

constexpr size_t kMaxBody = 1 << 20;  // 1 MB: a prompt and its settings fit many times over

void send_json(Response& res, int status, const json& j) {
  res.status = status;
  res.set_content(j.dump(), "application/json");
}

void send_error(Response& res, const ApiError& e) {
  send_json(res, e.status, e.body());
  if (e.status == 429 || e.status == 503) res.set_header("Retry-After", e.status == 429 ? "10" : "5");
}

ApiError not_found(const std::string& id) {
  return ApiError{404, "video_not_found", fmt::format("no video with id '{}'", id), "video_id"};
}

// cpp-httplib 0.11 applies the parsed Range header itself after a handler (slicing any body,
// JSON errors included, with no bounds check for streamed files). The Request it passes is its
// own non-const object, so clearing the parsed ranges here leaves ranges to serve_file alone.
void take_over_ranges(const Request& req) { const_cast<Request&>(req).ranges.clear(); }

// The key compared in constant time: digests of equal length, every byte looked at.
bool key_matches(const std::string& given, const std::string& key) {
  const std::string a = sha256_hex(given), b = sha256_hex(key);
  unsigned diff = 0;
  for (size_t i = 0; i < a.size() && i < b.size(); ++i) diff |= static_cast<unsigned>(a[i] ^ b[i]);
  return diff == 0 && a.size() == b.size();
}

std::string duration_text(int frames, Rational fps) {
  std::string s = fmt::format("{:.3f}", frames / fps.value());
  while (!s.empty() && s.back() == '0') s.pop_back();
  if (!s.empty() && s.back() == '.') s.pop_back();
  return s;
}

std::optional<int64_t> parse_int(const std::string& text) {
  int64_t v = 0;
  auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (text.empty() || ec != std::errc() || p != text.data() + text.size()) return std::nullopt;
  return v;
}

// One byte range of a file of `size` bytes, from a Range header: nullopt for the whole file
// (no header, several ranges, or a unit other than bytes, which RFC 9110 lets a server ignore);
// {-1, -1} when it cannot be satisfied.
std::optional<std::pair<int64_t, int64_t>> byte_range(const std::string& header, int64_t size) {
  const std::string prefix = "bytes=";
  if (header.rfind(prefix, 0) != 0 || header.find(',') != std::string::npos) return std::nullopt;
  const std::string spec = header.substr(prefix.size());
  const size_t dash = spec.find('-');
  if (dash == std::string::npos) return std::nullopt;
  const std::string a = spec.substr(0, dash), b = spec.substr(dash + 1);
  const std::pair<int64_t, int64_t> unsatisfiable{-1, -1};
  if (a.empty()) {  // the last N bytes
    std::optional<int64_t> n = parse_int(b);
    if (!n || *n <= 0 || size == 0) return unsatisfiable;
    return std::make_pair(std::max<int64_t>(0, size - *n), size - 1);
  }
  std::optional<int64_t> first = parse_int(a);
  std::optional<int64_t> last = b.empty() ? std::optional<int64_t>(size - 1) : parse_int(b);
  if (!first || !last || *first < 0 || *first >= size || *last < *first) return unsatisfiable;
  return std::make_pair(*first, std::min(*last, size - 1));
}

// A file of the job, streamed; byte ranges answered with 206 (416 when unsatisfiable).
void serve_file(const Request& req, Response& res, const std::string& path, const std::string& type,
                const std::string& id) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  struct stat st {};
  if (fd < 0 || ::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    if (fd >= 0) ::close(fd);
    return send_error(res, not_found(id));  // deleted while we looked
  }
  const int64_t size = st.st_size;
  int64_t first = 0, last = size - 1;
  res.status = 200;
  res.set_header("Accept-Ranges", "bytes");
  if (req.has_header("Range")) {
    if (std::optional<std::pair<int64_t, int64_t>> r = byte_range(req.get_header_value("Range"), size)) {
      if (r->first < 0) {
        ::close(fd);
        res.set_header("Content-Range", fmt::format("bytes */{}", size));
        return send_error(res, ApiError{416, "range_not_satisfiable",
                                        fmt::format("the range '{}' is outside the file's {} bytes",
                                                    req.get_header_value("Range"), size),
                                        ""});
      }
      std::tie(first, last) = *r;
      res.status = 206;
      res.set_header("Content-Range", fmt::format("bytes {}-{}/{}", first, last, size));
    }
  }
  if (size == 0) {
    ::close(fd);
    res.set_content("", type);
    return;
  }
  auto buffer = std::make_shared<std::vector<char>>(1 << 16);
  res.set_content_provider(
      static_cast<size_t>(last - first + 1), type,
      [fd, first, buffer](size_t offset, size_t length, httplib::DataSink& sink) {
        const size_t n = std::min(length, buffer->size());
        const ssize_t got = ::pread(fd, buffer->data(), n, static_cast<off_t>(first + static_cast<int64_t>(offset)));
        return got > 0 && sink.write(buffer->data(), static_cast<size_t>(got));
      },
      [fd](bool) { ::close(fd); });
}

// The request body, at most kMaxBody bytes: JSON text, or multipart form fields as JSON.
// Throws ApiError (400, 413).
json read_body(const Request& req, Response& res, const httplib::ContentReader& reader) {
  bool too_large = false;
  size_t total = 0;
  auto fits = [&](size_t n) {
    total += n;
    if (total > kMaxBody) too_large = true;
    return !too_large;
  };
  bool ok = false;
  json body;
  if (req.is_multipart_form_data()) {
    std::vector<std::pair<std::string, std::string>> fields;
    std::string file_field;
    ok = reader(
        [&](const httplib::MultipartFormData& part) {
          if (!part.filename.empty()) file_field = part.name;
          fields.emplace_back(part.name, "");
          return true;
        },
        [&](const char* data, size_t n) {
          if (!fits(n)) return false;
          fields.back().second.append(data, n);
          return true;
        });
    if (ok && !file_field.empty())
      throw ApiError{400, "unknown_parameter",
                     fmt::format("field \"{}\" is a file; t2v serve takes text fields only", file_field), file_field};
    if (ok) body = form_fields_json(fields);
  } else {
    std::string text;
    ok = reader([&](const char* data, size_t n) {
      if (!fits(n)) return false;
      text.append(data, n);
      return true;
    });
    if (ok) {
      try {
        body = json::parse(text);
      } catch (const json::parse_error& e) {
        throw ApiError{400, "invalid_json", fmt::format("the body is not valid JSON (byte {}): {}", e.byte, e.what()),
                       ""};
      }
    }
  }
  if (too_large || res.status == 413) {
    // Stopped reading mid-body: the rest of it must not be taken for the next request.
    if (too_large) res.set_header("Connection", "close");
    throw ApiError{413, "payload_too_large", fmt::format("the request body is larger than {} bytes", kMaxBody), ""};
  }
  if (!ok) throw ApiError{400, "invalid_body", "the request body could not be read", ""};
  return body;
}

std::string job_id_of(const Request& req) { return req.matches.size() > 1 ? req.matches[1].str() : ""; }

}  // namespace

json video_object(const Job& job) {
  const json& s = job.settings;
  int frames = s.value("frames", 0);
  Rational fps{16, 1};
  try {
    fps = parse_fps(s.value("fps", "16"));
  } catch (const Error&) {
  }
  json o;
  o["id"] = job.id;
  o["object"] = "video";
  o["created_at"] = job.created_at;
  o["status"] = job_status_name(job.status);
  o["progress"] = job.progress;
  o["completed_at"] = job.completed_at && job.status != JobStatus::kQueued ? json(*job.completed_at) : json(nullptr);
  o["expires_at"] = nullptr;
  o["error"] =
      job.status == JobStatus::kFailed ? json{{"code", job.error_code}, {"message", job.error_message}} : json(nullptr);
  o["model"] = s.value("model", "");
  o["prompt"] = s.value("prompt", "");
  o["remixed_from_video_id"] = nullptr;
  o["size"] = s.value("size", "");
  o["seconds"] = duration_text(frames, fps);
  // t2v's own fields: what reproduces the video.
  for (const char* k : {"seed", "frames", "fps", "steps", "cfg", "shift", "sampler", "schedule", "negative_prompt"})
    if (s.contains(k)) o[k] = s[k];
  o["attempts"] = job.attempts;
  o["preview_step"] = job.preview_step;
  return o;
}

void add_routes(httplib::Server& svr, ServeState& st) {
  svr.set_payload_max_length(kMaxBody);

  // Authentication first, before any body is read (the page and /health need no key).
  svr.set_pre_routing_handler([&st](const Request& req, Response& res) {
    take_over_ranges(req);
    if (st.opts.api_key.empty() || req.path.rfind("/v1/", 0) != 0) return httplib::Server::HandlerResponse::Unhandled;
    const std::string auth = req.get_header_value("Authorization");
    const std::string bearer = "Bearer ";
    if (auth.rfind(bearer, 0) == 0 && key_matches(auth.substr(bearer.size()), st.opts.api_key))
      return httplib::Server::HandlerResponse::Unhandled;
    send_error(res, ApiError{401, "invalid_api_key",
                             auth.empty() ? "no API key: send the header 'Authorization: Bearer <key>'"
                                          : "the API key is not valid",
                             ""});
    res.set_header("WWW-Authenticate", "Bearer");
    if (req.has_header("Content-Length") || req.has_header("Transfer-Encoding"))
      res.set_header("Connection", "close");  // its body is never read
    return httplib::Server::HandlerResponse::Handled;
  });

  // Errors cpp-httplib answers itself (no route, body too large, bad request line, bad Range):
  // the same JSON shape.
  svr.set_error_handler(httplib::Server::HandlerWithResponse([](const Request& req, Response& res) {
    take_over_ranges(req);
    if (!res.body.empty()) return httplib::Server::HandlerResponse::Unhandled;
    ApiError e;
    e.status = res.status;
    switch (res.status) {
      case 404:
        e.code = "not_found";
        e.message = fmt::format("no such endpoint: {} {}", req.method, req.path);
        break;
      case 413:
        e.code = "payload_too_large";
        e.message = fmt::format("the request body is larger than {} bytes", kMaxBody);
        break;
      case 416:
        e.code = "range_not_satisfiable";
        e.message = "the Range header is not a valid byte range";
        break;
      default:
        e.code = fmt::format("http_{}", res.status);
        e.message = fmt::format("the request could not be served (HTTP {})", res.status);
    }
    res.set_content(e.body().dump(), "application/json");
    return httplib::Server::HandlerResponse::Handled;
  }));

  svr.set_exception_handler([](const Request& req, Response& res, std::exception_ptr ep) {
    std::string what = "unknown error";
    try {
      std::rethrow_exception(ep);
    } catch (const std::exception& e) {
      what = e.what();
    } catch (...) {
    }
    spdlog::error("{} {}: {}", req.method, req.path, what);
    send_error(res, ApiError{500, "internal_error", what, ""});
  });

  // Limits cpp-httplib checks before reading a body: a declared length over the limit, or a
  // missing key, is answered before the client sends the body.
  svr.set_expect_100_continue_handler([&st](const Request& req, Response& res) {
    const std::string len = req.get_header_value("Content-Length");
    if (std::optional<int64_t> n = parse_int(len); n && *n > static_cast<int64_t>(kMaxBody)) {
      send_error(res, ApiError{413, "payload_too_large",
                               fmt::format("the request body is larger than {} bytes", kMaxBody), ""});
      res.set_header("Connection", "close");
      return 413;
    }
    return 100;
  });

  svr.Get("/", [](const Request&, Response& res) {
    res.set_content(kServePageHtml, "text/html; charset=utf-8");
    res.set_header("Cache-Control", "no-cache");
  });

  svr.Get("/health", [&st](const Request&, Response& res) {
    const ServePhase p = st.phase.load();
    const char* name = p == ServePhase::kReady ? "ready" : p == ServePhase::kLoading ? "loading" : "draining";
    send_json(res, p == ServePhase::kReady ? 200 : 503,
              {{"status", name}, {"model", st.model_name}, {"queued", st.store.queued()}});
  });

  svr.Post("/v1/videos", [&st](const Request& req, Response& res, const httplib::ContentReader& reader) {
    try {
      json body = read_body(req, res, reader);
      if (st.phase.load() == ServePhase::kLoading)
        throw ApiError{503, "model_loading", "the model is still loading; try again in a few seconds", ""};
      if (st.draining()) throw ApiError{503, "shutting_down", "the server is shutting down; try another one", ""};
      std::vector<std::string> warnings;
      JobSettings s = parse_video_request(body, st.opts.defaults, st.model_name, &warnings);
      std::optional<Job> job = st.store.submit(job_settings_json(s, st.model_name), st.opts.max_queue);
      if (!job)
        throw ApiError{429, "queue_full",
                       fmt::format("{} videos are already waiting (--max-queue); try again later", st.opts.max_queue),
                       ""};
      st.store.journal("submitted", job->id);
      for (const std::string& w : warnings) spdlog::warn("{}: {}", job->id, w);
      send_json(res, 200, video_object(*job));
    } catch (const ApiError& e) {
      send_error(res, e);
    } catch (const Error& e) {
      spdlog::error("POST /v1/videos: {}", e.what());
      send_error(res, ApiError{500, "storage_error", e.what(), ""});
    }
  });

  svr.Get("/v1/videos", [&st](const Request& req, Response& res) {
    try {
      int64_t limit = 20;
      if (req.has_param("limit")) {
        std::optional<int64_t> n = parse_int(req.get_param_value("limit"));
        if (!n || *n < 1 || *n > 100)
          throw ApiError{400, "invalid_value", "limit must be an integer in 1..100", "limit"};
        limit = *n;
      }
      const std::string order = req.has_param("order") ? req.get_param_value("order") : "desc";
      if (order != "desc" && order != "asc")
        throw ApiError{400, "invalid_value", "order must be 'desc' (newest first) or 'asc'", "order"};
      std::vector<Job> jobs = st.store.newest_first();
      if (order == "asc") std::reverse(jobs.begin(), jobs.end());
      size_t from = 0;
      if (req.has_param("after")) {
        const std::string after = req.get_param_value("after");
        auto it = std::find_if(jobs.begin(), jobs.end(), [&](const Job& j) { return j.id == after; });
        if (it == jobs.end())
          throw ApiError{400, "invalid_value", fmt::format("after: no video with id '{}'", after), "after"};
        from = static_cast<size_t>(it - jobs.begin()) + 1;
      }
      json data = json::array();
      for (size_t i = from; i < jobs.size() && static_cast<int64_t>(data.size()) < limit; ++i)
        data.push_back(video_object(jobs[i]));
      const bool more = from + data.size() < jobs.size();
      send_json(res, 200,
                {{"object", "list"},
                 {"data", data},
                 {"first_id", data.empty() ? json(nullptr) : data.front()["id"]},
                 {"last_id", data.empty() ? json(nullptr) : data.back()["id"]},
                 {"has_more", more}});
    } catch (const ApiError& e) {
      send_error(res, e);
    }
  });

  svr.Get(R"(/v1/videos/([^/]+))", [&st](const Request& req, Response& res) {
    const std::string id = job_id_of(req);
    std::optional<Job> job = valid_job_id(id) ? st.store.get(id) : std::nullopt;
    if (!job) return send_error(res, not_found(id));
    send_json(res, 200, video_object(*job));
  });

  svr.Delete(R"(/v1/videos/([^/]+))", [&st](const Request& req, Response& res) {
    const std::string id = job_id_of(req);
    if (!valid_job_id(id) || !st.store.remove(id)) return send_error(res, not_found(id));
    // Gone from the store first, so the render, stopping at its next step, finds nothing to requeue.
    st.cancel_if_running(id);
    st.store.journal("deleted", id);
    send_json(res, 200, {{"id", id}, {"object", "video.deleted"}, {"deleted", true}});
  });

  svr.Get(R"(/v1/videos/([^/]+)/content)", [&st](const Request& req, Response& res) {
    const std::string id = job_id_of(req);
    std::optional<Job> job = valid_job_id(id) ? st.store.get(id) : std::nullopt;
    if (!job) return send_error(res, not_found(id));
    const std::string variant = req.has_param("variant") ? req.get_param_value("variant") : "video";
    const char* file = variant == "video"         ? "video.mp4"
                       : variant == "thumbnail"   ? "thumbnail.png"
                       : variant == "spritesheet" ? "spritesheet.png"
                                                  : nullptr;
    if (!file)
      return send_error(
          res, ApiError{400, "invalid_value",
                        fmt::format("variant '{}' is not one of video, thumbnail, spritesheet", variant), "variant"});
    if (job->status != JobStatus::kCompleted)
      return send_error(res, ApiError{409, "video_not_ready",
                                      fmt::format("video {} is {}; its content is there once it is completed", id,
                                                  job_status_name(job->status)),
                                      ""});
    serve_file(req, res, st.store.job_dir(id) + "/" + file, variant == "video" ? "video/mp4" : "image/png", id);
  });

  svr.Get(R"(/v1/videos/([^/]+)/preview)", [&st](const Request& req, Response& res) {
    const std::string id = job_id_of(req);
    std::optional<Job> job = valid_job_id(id) ? st.store.get(id) : std::nullopt;
    if (!job) return send_error(res, not_found(id));
    const std::string path = st.store.job_dir(id) + "/preview.png";
    if (::access(path.c_str(), R_OK) != 0)
      return send_error(
          res, ApiError{409, "preview_not_ready",
                        fmt::format("video {} has no preview yet ({})", id, job_status_name(job->status)), ""});
    serve_file(req, res, path, "image/png", id);
    res.set_header("Cache-Control", "no-store");
  });
}

}  // namespace t2v
