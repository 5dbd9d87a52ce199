#include "app/gallery.h"

#include <filesystem>
#include <map>

#include <fmt/format.h>

#include "app/batch.h"
#include "core/error.h"
#include "video_io/atomic_file.h"

namespace t2v {

namespace fs = std::filesystem;
using nlohmann::json;

std::string html_escape(const std::string& s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&#39;"; break;
      default: out += c;
    }
  }
  return out;
}

namespace {

// A file name as a relative URL: '#', '?', '%' and spaces must not be read as URL syntax.
std::string url_path(const std::string& name) {
  std::string out;
  for (unsigned char c : name) {
    if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_' ||
        c == '.' || c == '~')
      out += static_cast<char>(c);
    else
      out += fmt::format("%{:02X}", c);
  }
  return out;
}

// An input image (an absolute path on this machine, as batch records it) as a file://
// URL, each path segment escaped like a file name: the gallery shows it when opened
// from disk.
std::string input_url(const std::string& path) {
  std::vector<std::string> parts;
  for (const auto& part : fs::absolute(fs::path(path)).lexically_normal())
    if (part.string() != "/" && !part.empty()) parts.push_back(url_path(part.string()));
  return fmt::format("file:///{}", fmt::join(parts, "/"));
}

std::string text_of(const json& v) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_null()) return "";
  return v.dump();
}

constexpr const char* kStyle = R"(body{font-family:system-ui,sans-serif;margin:1.5em;background:#fafafa;color:#222}
main{display:grid;grid-template-columns:repeat(auto-fill,minmax(320px,1fr));gap:1.2em}
figure{margin:0;background:#fff;border:1px solid #ddd;border-radius:6px;padding:.6em}
video{width:100%;background:#000}
img.input{width:30%;margin:0 .4em .4em 0;border:1px solid #ddd}
figcaption p{margin:.4em 0}
dl{display:grid;grid-template-columns:auto 1fr;gap:.1em .8em;font-size:.85em;color:#555;margin:.3em 0}
dt{font-weight:600}dd{margin:0;overflow-wrap:anywhere})";

}  // namespace

std::string gallery_html(const std::vector<json>& records, const std::string& title) {
  // The last "done" record per id wins (a --force rerun supersedes the earlier one).
  std::vector<std::string> order;
  std::map<std::string, json> last;
  for (const json& r : records) {
    if (!r.is_object() || r.value("status", json()) != "done" || !r.value("id", json()).is_string() ||
        !r.value("file", json()).is_string())
      continue;
    const std::string id = r["id"].get<std::string>();
    if (!last.count(id)) order.push_back(id);
    last[id] = r;
  }
  std::string h;
  h += "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n";
  h += "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n";
  h += fmt::format("<title>{}</title>\n<style>\n{}\n</style>\n</head>\n<body>\n", html_escape(title), kStyle);
  h += fmt::format("<h1>{}</h1>\n<p>{} video(s)</p>\n<main>\n", html_escape(title), order.size());
  for (const std::string& id : order) {
    const json& r = last[id];
    const std::string file = r["file"].get<std::string>();
    json settings = r.value("settings", json::object());
    if (!settings.is_object()) settings = json::object();
    std::string poster = fs::path(file).replace_extension(".png").string();
    h += fmt::format("<figure id=\"{}\">\n", html_escape("item-" + id));
    // Image-to-video: the input frame(s) beside the video.
    for (const char* k : {"image", "last_image"}) {
      if (!settings.contains(k) || !settings[k].is_string()) continue;
      h += fmt::format("<img class=\"input\" alt=\"{} of {}\" src=\"{}\">\n", k, html_escape(id),
                       html_escape(input_url(settings[k].get<std::string>())));
    }
    h += fmt::format("<video controls preload=\"metadata\" src=\"{}\"", html_escape(url_path(file)));
    if (r.value("preview", json()) == true) h += fmt::format(" poster=\"{}\"", html_escape(url_path(poster)));
    h += "></video>\n<figcaption>\n";
    h += fmt::format("<p>{}</p>\n<dl>\n", html_escape(text_of(settings.value("prompt", json("")))));
    h += fmt::format("<dt>id</dt><dd>{}</dd>\n<dt>file</dt><dd>{}</dd>\n", html_escape(id), html_escape(file));
    for (const char* k : {"negative_prompt", "seed", "size", "frames", "fps", "steps", "cfg", "shift", "sampler",
                          "schedule", "model"}) {
      if (!settings.contains(k) || settings[k].is_null()) continue;
      h += fmt::format("<dt>{}</dt><dd>{}</dd>\n", k, html_escape(text_of(settings[k])));
    }
    if (r.contains("compute_s_per_video_s") && r["compute_s_per_video_s"].is_number())
      h += fmt::format("<dt>compute</dt><dd>{:.1f} s per video-second</dd>\n",
                       r["compute_s_per_video_s"].get<double>());
    h += "</dl>\n</figcaption>\n</figure>\n";
  }
  h += "</main>\n</body>\n</html>\n";
  return h;
}

int write_gallery(const std::string& dir) {
  std::vector<json> records = read_manifest_records(dir);
  // Only files that are there (a gallery of a folder copied without some videos still loads).
  // Only names of files directly inside the folder, and only regular files there: a record
  // naming "../x", "/etc/x" or a symbolic link is not listed (docs/bad_inputs.md #69).
  auto regular_file_inside = [&](const std::string& name) {
    if (!unsafe_file_name_problem(name).empty()) return false;
    std::error_code ec;
    return fs::symlink_status(fs::path(dir) / name, ec).type() == fs::file_type::regular;
  };
  std::vector<json> present;
  for (const json& r : records) {
    if (r.value("status", json()) != "done" || !r.value("file", json()).is_string()) continue;
    const std::string file = r["file"].get<std::string>();
    if (!regular_file_inside(file)) continue;
    json c = r;
    c["preview"] = regular_file_inside(fs::path(file).replace_extension(".png").string());
    present.push_back(std::move(c));
  }
  std::string title = "t2v: " + fs::path(dir).lexically_normal().filename().string();
  if (title == "t2v: ") title = "t2v: " + fs::absolute(dir).lexically_normal().parent_path().filename().string();
  std::string html = gallery_html(present, title);
  write_file_atomic(dir + "/index.html", html.data(), html.size(), /*overwrite=*/true);
  int n = 0;
  for (size_t p = html.find("<video "); p != std::string::npos; p = html.find("<video ", p + 1)) ++n;
  return n;
}

int run_gallery(const std::string& dir, bool quiet) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec))
    throw Error(kExitNoInput, fmt::format("{} is not a folder", dir), "pass the --out-dir of a t2v batch run");
  int n = write_gallery(dir);
  if (!quiet) fmt::print(stderr, "t2v: wrote {}/index.html ({} video(s))\n", dir, n);
  return 0;
}

}  // namespace t2v
