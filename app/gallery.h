// `t2v gallery DIR`: a static DIR/index.html that plays every finished video of a batch
// manifest, with its prompt and settings. No scripts or external resources: it opens from
// the file system, a web server or an object store alike.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace t2v {

// HTML text/attribute escaping (& < > " ').
std::string html_escape(const std::string& s);

// The page for these manifest records (the last "done" record per id, in manifest order).
std::string gallery_html(const std::vector<nlohmann::json>& records, const std::string& title);

// Writes DIR/index.html atomically; returns how many videos it shows.
int write_gallery(const std::string& dir);

int run_gallery(const std::string& dir, bool quiet);

}  // namespace t2v
