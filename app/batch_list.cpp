// The JSONL prompt list: reading, validation (docs/bad_inputs.md #36-39), seed expansion and
// sharding (41). Every problem is collected as "file:line: message" so the user sees them
// all at once, before any model is loaded.
#include <climits>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <set>

#include <fmt/format.h>

#include "app/batch.h"
#include "app/choices.h"
#include "app/json_fields.h"
#include "app/sha256.h"
#include "core/error.h"
#include "core/file_read.h"
#include "core/json_strict.h"
#include "core/unicode.h"
#include "core/utf8.h"
#include "scheduler/distill.h"

namespace t2v {

namespace {

using nlohmann::json;

// File names: the temp file `.<name>.tmp-XXXXXX.mp4` and the lock `<id>.lock` must fit NAME_MAX too.
constexpr size_t kMaxNameBytes = 200;
// The list and its lines: far above any real list (a line holds two prompts of at most
// 64 KiB each, JSON-escaped), far below what would exhaust memory.
constexpr uint64_t kMaxListBytes = 256u << 20;
constexpr size_t kMaxLineBytes = 1u << 20;

const std::set<std::string> kFields = {"prompt", "id",      "negative_prompt", "seed",      "size",  "frames",
                                       "steps",  "cfg",     "shift",           "sampler",   "fps",   "output",
                                       "timesteps", "loras", "cache",          "image",     "last_image"};

std::string lower_ascii(std::string s) {
  for (char& c : s)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  return s;
}

bool ends_with_mp4(const std::string& s) { return s.size() > 4 && lower_ascii(s.substr(s.size() - 4)) == ".mp4"; }

std::string want_id(const json& v) {
  if (v.is_number_unsigned() || (v.is_number_integer() && v.get<int64_t>() >= 0)) return v.dump();
  return want_string(v, "id");
}

}  // namespace

std::string unsafe_file_name_problem(const std::string& name) {
  if (name.empty()) return "is empty";
  if (name.find('\0') != std::string::npos) return "contains a NUL byte";
  if (name[0] == '/') return "is an absolute path";
  if (name == "." || name == ".." || name.rfind("../", 0) == 0 || name.find("/../") != std::string::npos ||
      (name.size() >= 3 && name.compare(name.size() - 3, 3, "/..") == 0))
    return "leaves the output folder (..)";
  if (name.find('/') != std::string::npos || name.find('\\') != std::string::npos)
    return "contains a path separator (files go directly into --out-dir)";
  if (name[0] == '.') return "starts with '.' (hidden files are reserved for temp and lock files)";
  for (unsigned char c : name)
    if (c < 0x20 || c == 0x7f) return "contains a control character";
  if (name.size() > kMaxNameBytes) return fmt::format("is {} bytes long (at most {})", name.size(), kMaxNameBytes);
  if (auto bad = utf8_first_invalid(name)) return fmt::format("is not valid UTF-8 at byte {}", *bad);
  return "";
}

uint64_t derive_seed(const std::string& id, int k) {
  std::string h = sha256_hex(fmt::format("t2v-batch-seed\n{}\n{}", id, k));
  // 31 bits: short file names and exact in every JSON reader.
  return std::strtoull(h.substr(0, 8).c_str(), nullptr, 16) & 0x7fffffffULL;
}

BatchList read_batch_list(const std::string& path, const GenerateOptions& defaults, int seeds) {
  // A regular file (a folder, FIFO or /dev/zero is refused: 66) of bounded size (65), read
  // at once; each line is bounded too (docs/bad_inputs.md #73).
  const std::string data = read_input_file(path, "prompt list", kMaxListBytes, kExitDataErr);
  BatchList list;
  int lineno = 0;
  // Items per line before expansion, to check uniqueness over the expanded list afterwards.
  std::map<std::string, std::pair<int, std::string>> ids_seen, files_seen;  // collision key -> line, name
  auto err = [&](int ln, const std::string& msg) {
    list.errors.push_back(fmt::format("{}:{}: {}", path, ln, msg));
    list.error_lines.emplace_back(ln, msg);
  };
  StrictJsonOptions jo;
  jo.what = "line";
  for (size_t pos = 0; pos < data.size();) {
    const size_t nl = data.find('\n', pos);
    const size_t end = nl == std::string::npos ? data.size() : nl;
    ++lineno;
    if (end - pos > kMaxLineBytes) {
      err(lineno, fmt::format("the line is {} bytes, above the limit of {} bytes", end - pos, kMaxLineBytes));
      ++list.invalid_lines;
      pos = end + 1;
      continue;
    }
    std::string line = data.substr(pos, end - pos);
    pos = end + 1;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    size_t first = line.find_first_not_of(" \t");
    if (first == std::string::npos || line[first] == '#') continue;
    if (lineno == 1 && line.rfind("\xEF\xBB\xBF", 0) == 0) line.erase(0, 3);  // UTF-8 BOM
    if (auto bad = utf8_first_invalid(line)) {
      err(lineno, fmt::format("invalid UTF-8 at byte {} of the line", *bad));
      ++list.invalid_lines;
      continue;
    }
    json j;
    try {
      // Strict: duplicate keys and numbers beyond double range ("cfg": 1e999) are errors of
      // this line, like any other invalid JSON (docs/bad_inputs.md #15, #75).
      j = parse_json_strict("", line, jo);
    } catch (const Error& e) {
      std::string msg = e.what();
      if (msg.rfind(": ", 0) == 0) msg = msg.substr(2);  // the origin is the file:line prefix
      if (msg.rfind("line is not valid JSON", 0) == 0) msg = "invalid JSON" + msg.substr(22);
      err(lineno, msg);
      ++list.invalid_lines;
      continue;
    }
    if (!j.is_object()) {
      err(lineno, fmt::format("expected a JSON object like {{\"prompt\": \"...\"}}, got {}", json_type_name(j)));
      ++list.invalid_lines;
      continue;
    }
    std::vector<std::string> problems;
    for (auto it = j.begin(); it != j.end(); ++it)
      if (!kFields.count(it.key()))
        problems.push_back(fmt::format("unknown field \"{}\" (known: prompt, id, negative_prompt, seed, size, frames, "
                                       "steps, cfg, shift, sampler, timesteps, loras, fps, output, cache, image, last_image)",
                                       it.key()));
    GenerateOptions o = defaults;
    std::string id = std::to_string(lineno), file;
    std::optional<uint64_t> seed;
    auto field = [&](const char* name, auto&& apply) {
      if (!j.contains(name)) return;
      try {
        apply(j.at(name));
      } catch (const FieldError& e) {
        problems.push_back(e.message);
      } catch (const Error& e) {
        problems.push_back(fmt::format("\"{}\": {}", name, e.what()));
      }
    };
    if (!j.contains("prompt")) problems.push_back("missing \"prompt\"");
    field("prompt", [&](const json& v) { o.prompt = want_string(v, "prompt"); });
    field("negative_prompt", [&](const json& v) { o.negative_prompt = want_string(v, "negative_prompt"); });
    field("id", [&](const json& v) {
      id = want_id(v);
      std::string p = unsafe_file_name_problem(id);
      if (!p.empty()) throw FieldError{fmt::format("\"id\" {} (ids name the output and lock files)", p)};
    });
    field("seed", [&](const json& v) { seed = want_seed(v); });
    field("size", [&](const json& v) { parse_size(want_string(v, "size"), &o.width, &o.height); });
    field("frames", [&](const json& v) { o.frames = want_int(v, "frames"); });
    field("steps", [&](const json& v) { o.steps = want_int(v, "steps"); });
    field("cfg", [&](const json& v) { o.cfg = want_number(v, "cfg"); });
    field("shift", [&](const json& v) { o.shift = want_number(v, "shift"); });
    std::optional<std::string> sampler;  // parsed with the other settings below
    field("sampler", [&](const json& v) { sampler = want_string(v, "sampler"); });
    field("cache", [&](const json& v) { o.cache = parse_cache(want_string(v, "cache"), "\"cache\""); });
    field("timesteps", [&](const json& v) {
      const char* want = "\"timesteps\" must be a list of integers, e.g. [1000, 750, 500, 250]";
      if (!v.is_array()) throw FieldError{want};
      o.timesteps.clear();
      for (const json& e : v) {
        if (!e.is_number_integer() || e.get<int64_t>() < INT_MIN || e.get<int64_t>() > INT_MAX) throw FieldError{want};
        o.timesteps.push_back(e.get<int>());
      }
      try {
        check_distill_timesteps(o.timesteps, "\"timesteps\"");
      } catch (const Error& e) {
        throw FieldError{e.what()};
      }
    });
    field("loras", [&](const json& v) {
      const char* want = "\"loras\" must be a list of {\"file\": \"x.safetensors\", \"strength\": 1.0}";
      if (!v.is_array()) throw FieldError{want};
      o.loras.clear();  // the line's list replaces the default one
      for (const json& e : v) {
        if (!e.is_object() || !e.contains("file")) throw FieldError{want};
        for (auto f = e.begin(); f != e.end(); ++f)
          if (f.key() != "file" && f.key() != "strength") throw FieldError{want};
        LoraSpec l{want_string(e["file"], "loras[].file"), 1.0};
        if (l.file.empty()) throw FieldError{want};
        if (e.contains("strength")) l.strength = want_number(e["strength"], "loras[].strength");
        o.loras.push_back(l);
      }
    });
    field("fps", [&](const json& v) {
      o.fps = v.is_string() ? parse_fps(v.get<std::string>()) : parse_fps(fmt::format("{}", want_number(v, "fps")));
    });
    field("output", [&](const json& v) {
      file = want_string(v, "output");
      std::string p = unsafe_file_name_problem(file);
      if (!p.empty()) throw FieldError{fmt::format("\"output\" {}", p)};
      if (!ends_with_mp4(file)) throw FieldError{"\"output\" must end in .mp4"};
    });
    // Image-to-video: input images, relative to the list's folder; they must exist now
    // (a missing one fails the whole list before any model loads).
    for (const char* key : {"image", "last_image"}) {
      field(key, [&](const json& v) {
        std::filesystem::path p = want_string(v, key);
        if (p.is_relative()) p = std::filesystem::path(path).parent_path() / p;
        std::error_code ec;
        if (!std::filesystem::is_regular_file(p, ec))
          throw FieldError{fmt::format("\"{}\": {} is not a file", key, p.string())};
        (std::string(key) == "image" ? o.image : o.last_image) = std::filesystem::absolute(p).lexically_normal().string();
      });
    }
    if (problems.empty()) {
      o.output = "check.mp4";
      try {
        if (sampler) o.sampler = parse_sampler(*sampler, "\"sampler\"");
        // The sampler rules at the line's level (the defaults' were applied by the CLI).
        const bool distill = o.sampler == Sampler::kDistill;
        if (distill && j.contains("steps"))
          throw Error(kExitUsage, "\"steps\" with the distill sampler: it runs one step per \"timesteps\" entry");
        if (!distill && j.contains("timesteps"))
          throw Error(kExitUsage, fmt::format("\"timesteps\" is for the distill sampler, not {}",
                                              sampler_option_name(o.sampler)));
        if (!distill) o.timesteps.clear();  // the defaults' list, for their distill sampler
        if (distill && sampler && defaults.sampler != Sampler::kDistill && !j.contains("cfg")) o.cfg = 1.0;
        for (const std::string& w : validate_generate_options(o))
          list.warnings.push_back(fmt::format("{}:{}: {}", path, lineno, w));
      } catch (const Error& e) {
        problems.push_back(e.what());
      }
    }
    if (!problems.empty()) {
      for (const std::string& p : problems) err(lineno, p);
      ++list.invalid_lines;
      continue;
    }
    bool line_ok = true;
    std::vector<BatchItem> expanded;
    for (int k = 0; k < seeds; ++k) {
      BatchItem it;
      it.line = lineno;
      it.opts = o;
      it.seed_derived = !seed;
      it.seed = seed ? *seed + static_cast<uint64_t>(k) : derive_seed(id, k);
      it.id = seeds > 1 ? fmt::format("{}-s{}", id, it.seed) : id;
      if (file.empty()) {
        it.file = it.id + ".mp4";
      } else {
        it.file = seeds > 1 ? fmt::format("{}-s{}{}", file.substr(0, file.size() - 4), it.seed, file.substr(file.size() - 4))
                            : file;
      }
      for (const std::string* name : {&it.id, &it.file}) {
        std::string p = unsafe_file_name_problem(*name);
        if (!p.empty()) {
          err(lineno, fmt::format("\"{}\" {}", *name, p));
          line_ok = false;
        }
      }
      // Ids name the lock files and outputs: two that one file system takes for the same
      // name (case, Unicode normalisation, ignorable characters) collide (docs/bad_inputs.md #76).
      auto [iid, id_new] = ids_seen.emplace(name_collision_key(it.id), std::make_pair(lineno, it.id));
      if (!id_new) {
        const auto& [other_line, other] = iid->second;
        err(lineno, other == it.id ? fmt::format("duplicate id \"{}\" (line {} has the same id)", it.id, other_line)
                                   : fmt::format("duplicate id \"{}\": line {} has \"{}\", the same name on file "
                                                 "systems that ignore case or normalise Unicode",
                                                 it.id, other_line, other));
        line_ok = false;
      }
      auto [ifile, file_new] = files_seen.emplace(name_collision_key(it.file), std::make_pair(lineno, it.file));
      if (!file_new) {
        err(lineno, fmt::format("output \"{}\" is also the output of line {}{}", it.file, ifile->second.first,
                                ifile->second.second == it.file
                                    ? ""
                                    : fmt::format(" (\"{}\": the same name on file systems that ignore case or "
                                                  "normalise Unicode)",
                                                  ifile->second.second)));
        line_ok = false;
      }
      expanded.push_back(std::move(it));
    }
    if (!line_ok) {
      ++list.invalid_lines;
      continue;
    }
    for (BatchItem& it : expanded) list.items.push_back(std::move(it));
  }
  return list;
}

nlohmann::json item_settings(const BatchItem& item, const std::string& model) {
  const GenerateOptions& o = item.opts;
  json j;
  j["prompt"] = o.prompt;
  j["negative_prompt"] = o.negative_prompt ? json(*o.negative_prompt) : json(nullptr);
  j["seed"] = item.seed;
  j["size"] = fmt::format("{}x{}", o.width, o.height);
  j["frames"] = o.frames;
  j["steps"] = o.steps;
  j["cfg"] = o.cfg;
  j["shift"] = o.shift;
  j["sampler"] = sampler_option_name(o.sampler);
  if (o.sampler == Sampler::kDistill) j["timesteps"] = o.timesteps;
  for (const LoraSpec& l : o.loras) j["loras"].push_back({{"file", l.file}, {"strength", l.strength}});
  j["schedule"] = schedule_option_name(o.schedule);
  j["fps"] = format_fps(o.fps);
  j["model"] = model;
  if (o.cache.kind != StepCacheKind::kNone) j["cache"] = cache_option_text(o.cache);  // absent: no caching
  if (!o.image.empty()) j["image"] = o.image;
  if (!o.last_image.empty()) j["last_image"] = o.last_image;
  return j;
}

// ---- sharding --------------------------------------------------------------------------------

namespace {

std::optional<long> env_long(const char* name, bool* present) {
  const char* v = std::getenv(name);
  *present = v && *v;
  if (!*present) return std::nullopt;
  char* end = nullptr;
  errno = 0;
  long x = std::strtol(v, &end, 10);
  if (errno || end == v || *end) throw Error(kExitUsage, fmt::format("{}={} is not an integer", name, v));
  return x;
}

long parse_count(const std::string& what, const std::string& text) {
  char* end = nullptr;
  errno = 0;
  long x = std::strtol(text.c_str(), &end, 10);
  if (text.empty() || errno || *end || !(text[0] >= '0' && text[0] <= '9'))
    throw Error(kExitUsage, fmt::format("{} '{}' is not a non-negative integer", what, text));
  return x;
}

}  // namespace

ShardSpec resolve_shard(const std::string& spec, int shards) {
  ShardSpec s;
  const std::string hint = "use --shard I/N with 0 <= I < N, e.g. --shard 0/4";
  if (!spec.empty()) {
    size_t slash = spec.find('/');
    if (slash == std::string::npos) throw Error(kExitUsage, fmt::format("--shard '{}' is not I/N", spec), hint);
    long i = parse_count("--shard index", spec.substr(0, slash));
    long n = parse_count("--shard count", spec.substr(slash + 1));
    if (n < 1 || n > 1000000 || i >= n)
      throw Error(kExitUsage, fmt::format("--shard {}: the index must be below the count", spec), hint);
    s.index = static_cast<int>(i);
    s.count = static_cast<int>(n);
    s.source = "--shard";
    return s;
  }
  bool has_id = false, has_min = false, has_max = false, has_count = false, has_step = false;
  auto id = env_long("SLURM_ARRAY_TASK_ID", &has_id);
  if (has_id) {
    auto mn = env_long("SLURM_ARRAY_TASK_MIN", &has_min);
    auto mx = env_long("SLURM_ARRAY_TASK_MAX", &has_max);
    auto count = env_long("SLURM_ARRAY_TASK_COUNT", &has_count);
    auto step = env_long("SLURM_ARRAY_TASK_STEP", &has_step);
    long lo = has_min ? *mn : 0;
    long st = has_step ? *step : 1;
    if (!has_count)
      throw Error(kExitUsage, "SLURM_ARRAY_TASK_ID is set but SLURM_ARRAY_TASK_COUNT is not",
                  "submit with sbatch --array, or pass --shard I/N");
    if (st < 1) throw Error(kExitUsage, fmt::format("SLURM_ARRAY_TASK_STEP={} is not positive", st));
    long hi = has_max ? *mx : lo + (*count - 1) * st;
    if (*count < 1 || *id < lo || *id > hi)
      throw Error(kExitUsage,
                  fmt::format("SLURM_ARRAY_TASK_ID={} is outside SLURM_ARRAY_TASK_MIN..MAX = {}..{}", *id, lo, hi));
    // Sparse lists (--array=1,4,9) are not an arithmetic progression: index and count would disagree.
    if ((*id - lo) % st != 0 || hi - lo != (*count - 1) * st)
      throw Error(kExitUsage,
                  fmt::format("the Slurm array {}..{} step {} with {} tasks is not an arithmetic progression", lo, hi,
                              st, *count),
                  "use --array=A-B or A-B:S, or pass --shard I/N yourself");
    s.index = static_cast<int>((*id - lo) / st);
    s.count = static_cast<int>(*count);
    s.source = "SLURM_ARRAY_TASK_ID";
    return s;
  }
  bool has_k8s = false;
  auto k8s = env_long("JOB_COMPLETION_INDEX", &has_k8s);
  if (has_k8s) {
    long n = shards;
    if (n <= 0) {
      bool has_env = false;
      auto e = env_long("T2V_SHARDS", &has_env);
      if (!has_env)
        throw Error(kExitUsage, "JOB_COMPLETION_INDEX is set but the shard count is unknown",
                    "pass --shards N (the Job's completions) or set T2V_SHARDS");
      n = *e;
    }
    if (n < 1 || *k8s < 0 || *k8s >= n)
      throw Error(kExitUsage, fmt::format("JOB_COMPLETION_INDEX={} is outside 0..{}", *k8s, n - 1),
                  "--shards / T2V_SHARDS must equal the Job's completions");
    s.index = static_cast<int>(*k8s);
    s.count = static_cast<int>(n);
    s.source = "JOB_COMPLETION_INDEX";
    return s;
  }
  if (shards > 0) throw Error(kExitUsage, "--shards needs JOB_COMPLETION_INDEX", "use --shard I/N instead");
  return s;
}

}  // namespace t2v
