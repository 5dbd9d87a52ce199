// `t2v batch`: the render loop. Order matters: options and the whole list are checked,
// then the output folder, then the model paths; weights load only when the first item
// actually needs rendering, so a finished batch reruns in milliseconds.
#include "app/batch.h"

#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <ctime>
#include <filesystem>
#include <memory>
#include <set>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "app/model_paths.h"
#include "app/pipeline.h"
#include "app/progress.h"
#include "app/sha256.h"
#include "core/error.h"
#include "video_io/atomic_file.h"
#include "video_io/mp4_reader.h"
#include "video_io/mp4_writer.h"

namespace t2v {

namespace fs = std::filesystem;
using nlohmann::json;
using Clock = std::chrono::steady_clock;

namespace {

// ---- signals ----------------------------------------------------------------------------------
// SIGINT, SIGTERM (Slurm time limit / preemption, Kubernetes eviction) and SIGUSR1 (early warning on
// some clusters) all ask to stop after the current denoising step. A second SIGINT quits at once:
// temp files left behind are removed by the next run.
std::atomic<bool> g_cancel{false};
volatile sig_atomic_t g_signal = 0;

void on_signal(int sig) {
  if (sig == SIGINT && g_cancel.load()) _exit(130);
  g_signal = sig;
  g_cancel.store(true);
  static const char msg[] =
      "\nt2v: stopping after the current denoising step (press Ctrl-C again to quit at once)\n";
  ssize_t ignored = ::write(STDERR_FILENO, msg, sizeof msg - 1);
  (void)ignored;
}

void install_signal_handlers() {
  struct sigaction sa {};
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;
  for (int sig : {SIGINT, SIGTERM, SIGUSR1}) sigaction(sig, &sa, nullptr);
}

std::string utc_now() {
  std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

std::string host_name() {
  char buf[256] = {};
  if (gethostname(buf, sizeof buf - 1) != 0) return "unknown";
  return buf;
}

std::string short_text(const std::string& s, size_t n = 60) {
  if (s.size() <= n) return s;
  size_t cut = n;
  while (cut > 0 && (static_cast<unsigned char>(s[cut]) & 0xC0) == 0x80) --cut;  // whole UTF-8 characters
  return s.substr(0, cut) + "...";
}

std::string clock_text(double s) {
  long t = static_cast<long>(s + 0.5);
  return t >= 3600 ? fmt::format("{}:{:02d}:{:02d}", t / 3600, t / 60 % 60, t % 60)
                   : fmt::format("{:02d}:{:02d}", t / 60, t % 60);
}

enum class ItemState {
  kDone,    // finished and verified: skip
  kKeep,    // a file is there that we must not replace without --force: skip with a warning
  kRender,  // render (overwrite: replace a broken or forced file)
};

struct Check {
  ItemState state = ItemState::kRender;
  bool overwrite = false;
  std::string note;  // why, for the user
};

// Does the folder already hold this item, finished and unchanged (docs/bad_inputs.md #40, #43, #50)?
Check check_item(const BatchItem& item, const std::string& dir, Manifest& manifest, const std::string& model,
                 bool force) {
  Check c;
  const std::string path = dir + "/" + item.file;
  std::error_code ec;
  const bool exists = fs::exists(path, ec);
  std::optional<json> rec = manifest.last_done(item.id);
  if (!exists) {
    if (rec) c.note = fmt::format("{} is in the manifest but its file is gone; rendering it again", item.file);
    return c;
  }
  std::string problem = mp4_structure_problem(path);
  if (!problem.empty()) {
    c.overwrite = true;
    c.note = fmt::format("{} is incomplete ({}); rendering it again", item.file, problem);
    return c;
  }
  if (force) {
    c.overwrite = true;
    return c;
  }
  const json settings = item_settings(item, model);
  if (rec) {
    if ((*rec).value("sha256", "") != sha256_file(path)) {
      c.state = ItemState::kKeep;
      c.note = fmt::format("{} changed since it was rendered (SHA-256 differs from the manifest); keeping it, "
                           "--force renders it again",
                           item.file);
    } else if ((*rec).value("settings", json()) != settings) {
      c.state = ItemState::kKeep;
      c.note = fmt::format("item {} (line {}) changed in the list since {} was rendered; keeping the earlier video, "
                           "--force renders it again",
                           item.id, item.line, item.file);
    } else {
      c.state = ItemState::kDone;
    }
    return c;
  }
  // A complete file without a record: the run was killed between the rename and the manifest
  // append. Adopt it when its own metadata says it is this item; never replace someone's file.
  json meta;
  try {
    Mp4Reader r;
    r.open(path);
    auto it = r.info().metadata.find("t2v");
    if (it != r.info().metadata.end()) meta = json::parse(it->second, nullptr, false);
  } catch (const Error&) {
  }
  bool ours = meta.is_object();
  for (const char* k : {"prompt", "seed", "size", "frames", "steps", "sampler", "schedule", "fps"})
    ours = ours && meta.contains(k) && meta[k] == settings[k];
  if (ours) {
    c.state = ItemState::kDone;
    c.note = "adopt";
  } else {
    c.state = ItemState::kKeep;
    c.note = fmt::format("{} exists but is not a render of item {} (line {}); keeping it, --force replaces it",
                         item.file, item.id, item.line);
  }
  return c;
}

json done_record(const BatchItem& item, const std::string& dir, const std::string& model, const ShardSpec& shard) {
  const std::string path = dir + "/" + item.file;
  json r;
  r["status"] = "done";
  r["id"] = item.id;
  r["file"] = item.file;
  r["line"] = item.line;
  r["seed"] = item.seed;
  r["seed_derived"] = item.seed_derived;
  r["settings"] = item_settings(item, model);
  r["sha256"] = sha256_file(path);
  std::error_code ec;
  r["bytes"] = static_cast<uint64_t>(fs::file_size(path, ec));
  r["video_s"] = item.opts.frames / item.opts.fps.value();
  r["host"] = host_name();
  r["pid"] = static_cast<long>(::getpid());
  r["shard"] = fmt::format("{}/{}", shard.index, shard.count);
  r["time"] = utc_now();
  return r;
}

bool retryable(int code) { return code == kExitTempFail || code == kExitIoErr || code == kExitUnavailable; }

}  // namespace

int run_batch(BatchOptions& o) {
  const auto t_start = Clock::now();
  if (o.seeds < 1 || o.seeds > 10000)
    throw Error(kExitUsage, fmt::format("--seeds {} is out of range", o.seeds), "use 1 .. 10000");
  if (o.out_dir.empty()) throw Error(kExitUsage, "--out-dir is required", "name a folder for the videos");
  ShardSpec shard = resolve_shard(o.shard, o.shards);
  const bool say = !o.defaults.quiet && !o.defaults.json;
  Progress events(false, o.defaults.json);

  // ---- the list, completely, before anything else --------------------------------------------
  BatchList list = read_batch_list(o.list, o.defaults, o.seeds);
  for (const std::string& w : list.warnings) spdlog::warn("{}", w);
  if (!list.errors.empty()) {
    for (const std::string& e : list.errors) fmt::print(stderr, "{}\n", e);
    if (!o.skip_invalid)
      throw Error(kExitDataErr, fmt::format("{} has {} invalid line(s), listed above; nothing was rendered", o.list,
                                            list.invalid_lines),
                  "fix them, or pass --skip-invalid to render the valid lines");
    spdlog::warn("leaving out {} invalid line(s) of {} (--skip-invalid)", list.invalid_lines, o.list);
  }
  if (list.items.empty()) {
    if (list.invalid_lines == 0) {
      fmt::print(stderr, "t2v: {} has no prompts (only blank lines or # comments); nothing to do\n", o.list);
      events.event("batch_done", {{"rendered", 0}, {"skipped", 0}, {"failed", 0}, {"items", 0}});
      return o.fail_empty ? kExitDataErr : kExitOk;
    }
    throw Error(kExitDataErr, fmt::format("{} has no valid lines", o.list));
  }

  // ---- the output folder ------------------------------------------------------------------------
  std::error_code ec;
  if (!fs::is_directory(o.out_dir, ec)) {
    if (fs::exists(o.out_dir, ec))
      throw Error(kExitCantCreate, fmt::format("--out-dir {} is not a folder", o.out_dir), "choose a folder");
    fs::create_directories(o.out_dir, ec);
    if (ec)
      throw Error(kExitCantCreate, fmt::format("cannot create --out-dir {}: {}", o.out_dir, ec.message()),
                  "check the path and permissions");
  }
  check_output_writable(o.out_dir);
  int cleaned = clean_stale_temp_files(o.out_dir);
  if (cleaned > 0 && say)
    fmt::print(stderr, "t2v: removed {} temp file(s) left by an interrupted run in {}\n", cleaned, o.out_dir);
  check_h264_encoder();
  ModelPaths paths = resolve_model_paths(o.defaults);
  if (!paths.any())
    throw Error(kExitNoInput, "no model to render with", "pass --model FOLDER (a diffusers Wan2.1 folder)");

  Manifest manifest(o.out_dir);
  for (const std::string& w : manifest.load()) spdlog::warn("{}", w);
  // --skip-invalid: every problem of a left-out line becomes a `failed` record (written once,
  // by shard 0), so the manifest says what was not rendered and why.
  if (o.skip_invalid && shard.index == 0) {
    std::set<std::pair<int64_t, std::string>> recorded;
    for (const json& r : manifest.records())
      if (r.value("status", "") == "failed" && r.contains("line") && r["line"].is_number_integer() &&
          r.contains("message") && r["message"].is_string())
        recorded.emplace(r["line"].get<int64_t>(), r["message"].get<std::string>());
    for (const auto& [ln, msg] : list.error_lines) {
      if (recorded.count({ln, msg})) continue;
      manifest.append({{"status", "failed"},
                       {"id", nullptr},  // the line has no valid item
                       {"line", ln},
                       {"code", kExitDataErr},
                       {"message", msg},
                       {"retryable", false},
                       {"host", host_name()},
                       {"pid", static_cast<long>(::getpid())},
                       {"time", utc_now()}});
    }
  }
  {
    std::set<std::string> ids;
    for (const BatchItem& it : list.items) ids.insert(it.id);
    std::set<std::string> gone;
    for (const json& r : manifest.records())
      if (r["status"] == "done" && r["id"].is_string() && !ids.count(r["id"].get<std::string>()))
        gone.insert(r["id"].get<std::string>());
    if (!gone.empty() && shard.index == 0)
      spdlog::warn("{} finished item(s) in {} are no longer in {} (e.g. {}); their videos are kept", gone.size(),
                   manifest.path(), o.list, *gone.begin());
  }

  // ---- this shard's items: item k of the expanded list goes to shard k mod N ---------------------
  std::vector<const BatchItem*> mine;
  for (size_t k = 0; k < list.items.size(); ++k)
    if (static_cast<int>(k % static_cast<size_t>(shard.count)) == shard.index) mine.push_back(&list.items[k]);
  const std::string model = paths.name;
  struct Todo {
    const BatchItem* item;
    Check check;
  };
  std::vector<Todo> todo;
  int skipped = 0, kept = 0, rendered = 0, failed = 0, locked = 0;
  const std::string shard_text =
      shard.count > 1 ? fmt::format(" (shard {}/{} from {})", shard.index, shard.count, shard.source) : "";
  for (const BatchItem* it : mine) {
    Check c = check_item(*it, o.out_dir, manifest, model, o.force);
    if (c.state == ItemState::kRender) {
      todo.push_back({it, c});
      continue;
    }
    if (c.note == "adopt") {
      json rec = done_record(*it, o.out_dir, model, shard);
      rec["adopted"] = true;  // no timings: the run that rendered it died before recording it
      manifest.append(rec);
    } else if (!c.note.empty()) {
      spdlog::warn("{}", c.note);
    }
    ++(c.state == ItemState::kDone ? skipped : kept);
    events.event("item_skipped", {{"id", it->id}, {"file", it->file}, {"reason", c.note.empty() ? "done" : c.note}});
  }
  if (say)
    fmt::print(stderr, "t2v: batch {}: {} item(s){}, {} to render, {} already done{}\n", o.list, mine.size(),
               shard_text, todo.size(), skipped, kept ? fmt::format(", {} kept as they are", kept) : "");
  events.event("batch_start", {{"items", mine.size()}, {"total_items", list.items.size()}, {"to_render", todo.size()},
                               {"skipped", skipped + kept}, {"shard", shard.index}, {"shards", shard.count}});

  // ---- render -------------------------------------------------------------------------------------
  g_cancel.store(false);
  install_signal_handlers();
  std::unique_ptr<Pipeline> pipeline;
  double compute_s = 0, video_s = 0, render_wall_s = 0;
  int exit_code = kExitOk;
  auto summary = [&](const char* how) {
    double per = video_s > 0 ? compute_s / video_s : 0.0;
    const char* unit = o.defaults.device == "cuda" ? "GPU" : "CPU";
    if (!o.defaults.quiet)
      fmt::print(stderr,
                 "t2v: batch {}: {} rendered, {} skipped (done), {} kept, {} failed, {} locked by other workers; "
                 "{:.1f} {}-seconds per video-second; {:.1f} s\n",
                 how, rendered, skipped, kept, failed, locked, per, unit,
                 std::chrono::duration<double>(Clock::now() - t_start).count());
    events.event("batch_done", {{"status", how}, {"rendered", rendered}, {"skipped", skipped}, {"kept", kept},
                                {"failed", failed}, {"locked", locked}, {"compute_s_per_video_s", per}});
  };
  for (size_t n = 0; n < todo.size(); ++n) {
    const BatchItem& item = *todo[n].item;
    if (g_cancel.load()) break;
    ItemLock lock;
    std::string holder;
    if (!lock.acquire(o.out_dir, item.id, o.lock_timeout_s, &holder)) {
      ++locked;
      if (say) fmt::print(stderr, "t2v: {} is being rendered by {}; skipping it\n", item.id, holder);
      events.event("item_locked", {{"id", item.id}, {"holder", holder}});
      continue;
    }
    // Another worker may have finished it since we looked.
    for (const std::string& w : manifest.load()) spdlog::warn("{}", w);
    Check c = o.force ? todo[n].check : check_item(item, o.out_dir, manifest, model, false);
    if (c.state != ItemState::kRender) {
      ++(c.state == ItemState::kDone ? skipped : kept);
      continue;
    }
    if (!c.note.empty()) spdlog::warn("{}", c.note);
    GenerateOptions go = item.opts;
    go.output = o.out_dir + "/" + item.file;
    go.overwrite = c.overwrite;
    go.preview = o.defaults.preview;
    go.quiet = o.defaults.quiet;
    go.json = o.defaults.json;
    go.progress_bar = o.defaults.progress_bar;
    const double remaining = static_cast<double>(todo.size() - n);
    if (say)
      fmt::print(stderr, "t2v: [{}/{}] {} (seed {}): \"{}\"{}\n", n + 1, todo.size(), item.id, item.seed,
                 short_text(item.opts.prompt),
                 rendered > 0 ? fmt::format("  batch ETA {}", clock_text(render_wall_s / rendered * remaining)) : "");
    events.event("item_start", {{"id", item.id}, {"file", item.file}, {"index", n + 1}, {"of", todo.size()},
                                {"seed", item.seed}});
    const auto t0 = Clock::now();
    try {
      // Room for the encoded video plus the temp file's own overhead (docs/bad_inputs.md #44).
      check_free_space(o.out_dir, static_cast<uint64_t>(go.width) * go.height * go.frames / 2 + (1u << 20));
      if (!pipeline) {
        PipelineLoadOptions lo;
        lo.device = o.defaults.device == "cuda" ? Device::CUDA : Device::CPU;
        lo.strict = o.defaults.strict;
        lo.keep_text_encoder = !o.low_memory;
        pipeline = std::make_unique<Pipeline>(paths, lo);
      }
      Progress progress(go.progress_bar, go.json);
      PipelineResult r = pipeline->render(go, item.seed, progress, "", &g_cancel);
      json rec = done_record(item, o.out_dir, model, shard);
      const double wall = std::chrono::duration<double>(Clock::now() - t0).count();
      const double item_compute = r.encode_s + r.denoise_s + r.decode_s;
      rec["timings_s"] = {{"load", r.load_s},     {"encode", r.encode_s}, {"denoise", r.denoise_s},
                          {"decode", r.decode_s}, {"mux", r.mux_s},       {"total", wall}};
      rec["compute_s_per_video_s"] = item_compute / rec["video_s"].get<double>();
      manifest.append(rec);
      lock.release();
      ++rendered;
      compute_s += item_compute;
      video_s += rec["video_s"].get<double>();
      render_wall_s += wall - r.load_s;
      events.event("item_done", {{"id", item.id}, {"file", item.file}, {"sha256", rec["sha256"]}, {"seconds", wall},
                                 {"done", n + 1}, {"of", todo.size()}});
    } catch (const Error& e) {
      const bool interrupted = e.code() == kExitTempFail && g_cancel.load();
      json rec{{"status", interrupted ? "interrupted" : "failed"},
               {"id", item.id},
               {"file", item.file},
               {"line", item.line},
               {"code", e.code()},
               {"message", e.what()},
               {"retryable", interrupted || retryable(e.code())},
               {"host", host_name()},
               {"pid", static_cast<long>(::getpid())},
               {"time", utc_now()}};
      if (interrupted) rec["signal"] = static_cast<int>(g_signal);
      try {
        manifest.append(rec);
      } catch (const Error& m) {
        if (std::string(m.what()) != e.what()) spdlog::warn("could not record the failure: {}", m.what());
      }
      lock.release();
      events.event(interrupted ? "item_interrupted" : "item_failed",
                   {{"id", item.id}, {"code", e.code()}, {"message", e.what()}});
      if (interrupted) {
        summary("interrupted");
        fmt::print(stderr, "t2v: interrupted; run the same command again to resume (exit 75)\n");
        return kExitTempFail;
      }
      ++failed;
      fmt::print(stderr, "t2v: error: item {} (line {}): {}\n", item.id, item.line, e.what());
      if (e.code() != kExitUsage && e.code() != kExitDataErr && e.code() != kExitSoftware) {
        summary("stopped");
        return e.code();  // the machine or the disk is the problem: later items would fail too
      }
      if (exit_code == kExitOk) exit_code = e.code();
    }
  }
  if (g_cancel.load()) {
    summary("interrupted");
    return kExitTempFail;
  }
  if (o.skip_invalid && list.invalid_lines > 0 && exit_code == kExitOk) exit_code = kExitDataErr;
  summary(failed ? "finished with failures" : "finished");
  return exit_code;
}

}  // namespace t2v
