// `t2v batch` in four steps: plan (the whole list, the device, the output folder, the
// model paths, the manifest, and which items of this shard need rendering), then per
// item claim (its lock and a fresh look at the folder), render (through the pipeline)
// and record (the manifest record; the summary at the end). Order matters: the list is
// checked first, the device before the folder is touched or a model file looked at, and
// weights load only when the first item actually needs rendering, so a finished batch
// reruns in milliseconds.
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

#include "app/engine.h"
#include "app/host.h"
#include "app/model_paths.h"
#include "app/pipeline.h"
#include "app/progress.h"
#include "app/render_request.h"
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
  const fs::file_status st = fs::symlink_status(path, ec);
  const bool exists = fs::exists(st);
  std::optional<json> rec = manifest.last_done(item.id);
  if (exists && !fs::is_regular_file(st)) {
    // A link, FIFO or folder under the item's name is never read, followed or replaced
    // (docs/bad_inputs.md #69): someone else put it there.
    c.state = ItemState::kKeep;
    c.note = fmt::format("{} is a {}, not a video file; leaving it alone (remove it to render item {})", item.file,
                         fs::is_symlink(st) ? "symbolic link" : fs::is_directory(st) ? "folder" : "special file",
                         item.id);
    return c;
  }
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
    if ((*rec)["sha256"] != sha256_file(path)) {  // a string: Manifest checked each record
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

double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

struct Todo {
  const BatchItem* item;
  Check check;
};

// One `t2v batch` run: what the four steps share.
class BatchRun {
 public:
  explicit BatchRun(BatchOptions& o)
      : o_(o), t_start_(Clock::now()), say_(!o.defaults.quiet && !o.defaults.json), events_(false, o.defaults.json) {}

  int run();

 private:
  // ---- plan ----
  // Everything before the first render; an exit code when there is nothing to plan.
  std::optional<int> plan();
  std::optional<int> read_list();
  void open_folder();
  void open_manifest();
  void choose_items();
  // ---- claim ----
  // The item's lock, then a fresh look at the folder (another worker may have finished it
  // since the plan); the check to render it with, or none when it is left alone.
  std::optional<Check> claim(const Todo& todo, ItemLock& lock);
  // ---- render ----
  PipelineResult render(const BatchItem& item, const Check& check, size_t n);
  // ---- record ----
  void record_done(const BatchItem& item, const PipelineResult& r, double wall_s, size_t n, ItemLock& lock);
  void record_failure(const BatchItem& item, const Error& e, bool interrupted, ItemLock& lock);
  void summary(const char* how);

  BatchOptions& o_;
  const Clock::time_point t_start_;
  const bool say_;
  Progress events_;
  ShardSpec shard_;
  BatchList list_;
  std::optional<Engine> engine_;
  std::optional<Manifest> manifest_;
  std::vector<Todo> todo_;
  size_t mine_ = 0;  // items of this shard
  int rendered_ = 0, skipped_ = 0, kept_ = 0, failed_ = 0, locked_ = 0;
  double compute_s_ = 0, video_s_ = 0, render_wall_s_ = 0;
};

std::optional<int> BatchRun::plan() {
  if (o_.seeds < 1 || o_.seeds > 10000)
    throw Error(kExitUsage, fmt::format("--seeds {} is out of range", o_.seeds), "use 1 .. 10000");
  if (o_.out_dir.empty()) throw Error(kExitUsage, "--out-dir is required", "name a folder for the videos");
  shard_ = resolve_shard(o_.shard, o_.shards);
  if (std::optional<int> code = read_list()) return code;
  // The device and the dtype before the folder is touched or any model file looked at:
  // no GPU is one line, at once, with nothing written.
  EngineOptions eo = engine_options(o_.defaults);
  eo.keep_text_encoder = !o_.low_memory;
  engine_.emplace(eo);
  open_folder();
  open_manifest();
  choose_items();
  return std::nullopt;
}

// The list, completely, before anything else.
std::optional<int> BatchRun::read_list() {
  list_ = read_batch_list(o_.list, o_.defaults, o_.seeds);
  for (const std::string& w : list_.warnings) spdlog::warn("{}", w);
  if (!list_.errors.empty()) {
    for (const std::string& e : list_.errors) fmt::print(stderr, "{}\n", e);
    if (!o_.skip_invalid)
      throw Error(kExitDataErr, fmt::format("{} has {} invalid line(s), listed above; nothing was rendered", o_.list,
                                            list_.invalid_lines),
                  "fix them, or pass --skip-invalid to render the valid lines");
    spdlog::warn("leaving out {} invalid line(s) of {} (--skip-invalid)", list_.invalid_lines, o_.list);
  }
  if (!list_.items.empty()) return std::nullopt;
  if (list_.invalid_lines == 0) {
    fmt::print(stderr, "t2v: {} has no prompts (only blank lines or # comments); nothing to do\n", o_.list);
    events_.event("batch_done", {{"rendered", 0}, {"skipped", 0}, {"failed", 0}, {"items", 0}});
    return o_.fail_empty ? kExitDataErr : kExitOk;
  }
  throw Error(kExitDataErr, fmt::format("{} has no valid lines", o_.list));
}

// The output folder (made when missing), the encoder, and the model's paths.
void BatchRun::open_folder() {
  std::error_code ec;
  if (!fs::is_directory(o_.out_dir, ec)) {
    if (fs::exists(o_.out_dir, ec))
      throw Error(kExitCantCreate, fmt::format("--out-dir {} is not a folder", o_.out_dir), "choose a folder");
    fs::create_directories(o_.out_dir, ec);
    if (ec)
      throw Error(kExitCantCreate, fmt::format("cannot create --out-dir {}: {}", o_.out_dir, ec.message()),
                  "check the path and permissions");
  }
  check_output_writable(o_.out_dir);
  int cleaned = clean_stale_temp_files(o_.out_dir);
  if (cleaned > 0 && say_)
    fmt::print(stderr, "t2v: removed {} temp file(s) left by an interrupted run in {}\n", cleaned, o_.out_dir);
  check_h264_encoder();
  if (!engine_->resolve_model(o_.defaults).any())
    throw Error(kExitNoInput, "no model to render with", "pass --model FOLDER (a diffusers Wan2.1 folder)");
  // A step cache the model cannot run fails the batch before any item renders.
  for (const BatchItem& it : list_.items) {
    if (it.opts.cache.kind == StepCacheKind::kNone) continue;
    try {
      engine_->pipeline().resolve_cache(render_request(it.opts, it.seed).cache);
    } catch (const Error& e) {
      throw Error(e.code(), fmt::format("{}:{}: {}", o_.list, it.line, e.what()));
    }
  }
}

void BatchRun::open_manifest() {
  Manifest& manifest = manifest_.emplace(o_.out_dir);
  for (const std::string& w : manifest.load()) spdlog::warn("{}", w);
  // --skip-invalid: every problem of a left-out line becomes a `failed` record (written once,
  // by shard 0), so the manifest says what was not rendered and why.
  if (o_.skip_invalid && shard_.index == 0) {
    std::set<std::pair<int64_t, std::string>> recorded;
    for (const json& r : manifest.records())
      if (r.value("status", "") == "failed" && r.contains("line") && r["line"].is_number_integer() &&
          r.contains("message") && r["message"].is_string())
        recorded.emplace(r["line"].get<int64_t>(), r["message"].get<std::string>());
    for (const auto& [ln, msg] : list_.error_lines) {
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
  std::set<std::string> ids;
  for (const BatchItem& it : list_.items) ids.insert(it.id);
  std::set<std::string> gone;
  for (const json& r : manifest.records())
    if (r["status"] == "done" && r["id"].is_string() && !ids.count(r["id"].get<std::string>()))
      gone.insert(r["id"].get<std::string>());
  if (!gone.empty() && shard_.index == 0)
    spdlog::warn("{} finished item(s) in {} are no longer in {} (e.g. {}); their videos are kept", gone.size(),
                 manifest.path(), o_.list, *gone.begin());
}

// This shard's items (item k of the expanded list goes to shard k mod N), and which of them
// need rendering.
void BatchRun::choose_items() {
  const std::string& model = engine_->model().name;
  std::vector<const BatchItem*> mine;
  for (size_t k = 0; k < list_.items.size(); ++k)
    if (static_cast<int>(k % static_cast<size_t>(shard_.count)) == shard_.index) mine.push_back(&list_.items[k]);
  mine_ = mine.size();
  for (const BatchItem* it : mine) {
    Check c = check_item(*it, o_.out_dir, *manifest_, model, o_.force);
    if (c.state == ItemState::kRender) {
      todo_.push_back({it, c});
      continue;
    }
    if (c.note == "adopt") {
      json rec = done_record(*it, o_.out_dir, model, shard_);
      rec["adopted"] = true;  // no timings: the run that rendered it died before recording it
      manifest_->append(rec);
    } else if (!c.note.empty()) {
      spdlog::warn("{}", c.note);
    }
    ++(c.state == ItemState::kDone ? skipped_ : kept_);
    events_.event("item_skipped", {{"id", it->id}, {"file", it->file}, {"reason", c.note.empty() ? "done" : c.note}});
  }
  const std::string shard_text =
      shard_.count > 1 ? fmt::format(" (shard {}/{} from {})", shard_.index, shard_.count, shard_.source) : "";
  if (say_)
    fmt::print(stderr, "t2v: batch {}: {} item(s){}, {} to render, {} already done{}\n", o_.list, mine_, shard_text,
               todo_.size(), skipped_, kept_ ? fmt::format(", {} kept as they are", kept_) : "");
  events_.event("batch_start", {{"items", mine_}, {"total_items", list_.items.size()}, {"to_render", todo_.size()},
                                {"skipped", skipped_ + kept_}, {"shard", shard_.index}, {"shards", shard_.count}});
}

std::optional<Check> BatchRun::claim(const Todo& todo, ItemLock& lock) {
  const BatchItem& item = *todo.item;
  std::string holder;
  if (!lock.acquire(o_.out_dir, item.id, o_.lock_timeout_s, &holder)) {
    ++locked_;
    if (say_) fmt::print(stderr, "t2v: {} is being rendered by {}; skipping it\n", item.id, holder);
    events_.event("item_locked", {{"id", item.id}, {"holder", holder}});
    return std::nullopt;
  }
  for (const std::string& w : manifest_->load()) spdlog::warn("{}", w);
  Check c = o_.force ? todo.check : check_item(item, o_.out_dir, *manifest_, engine_->model().name, false);
  if (c.state != ItemState::kRender) {
    ++(c.state == ItemState::kDone ? skipped_ : kept_);
    return std::nullopt;
  }
  if (!c.note.empty()) spdlog::warn("{}", c.note);
  return c;
}

PipelineResult BatchRun::render(const BatchItem& item, const Check& check, size_t n) {
  RenderRequest r = render_request(item.opts, item.seed);
  r.output = o_.out_dir + "/" + item.file;
  r.overwrite = check.overwrite;
  r.preview = o_.defaults.preview;
  r.preview_overwrite = true;  // an item's previews belong to it
  r.quiet = o_.defaults.quiet;
  r.json = o_.defaults.json;
  r.progress_bar = o_.defaults.progress_bar;
  const double remaining = static_cast<double>(todo_.size() - n);
  if (say_)
    fmt::print(stderr, "t2v: [{}/{}] {} (seed {}): \"{}\"{}\n", n + 1, todo_.size(), item.id, item.seed,
               short_text(item.opts.prompt),
               rendered_ > 0 ? fmt::format("  batch ETA {}", clock_text(render_wall_s_ / rendered_ * remaining)) : "");
  events_.event("item_start", {{"id", item.id}, {"file", item.file}, {"index", n + 1}, {"of", todo_.size()},
                               {"seed", item.seed}});
  // Room for the encoded video plus the temp file's own overhead (docs/bad_inputs.md #44).
  check_free_space(o_.out_dir, static_cast<uint64_t>(r.width) * r.height * r.frames / 2 + (1u << 20));
  Progress progress(r.progress_bar, r.json);
  return engine_->pipeline().render(r, progress, &g_cancel);
}

void BatchRun::record_done(const BatchItem& item, const PipelineResult& r, double wall_s, size_t n, ItemLock& lock) {
  json rec = done_record(item, o_.out_dir, engine_->model().name, shard_);
  const StageTimes& t = r.times;
  const double item_compute = t.encode_s + t.denoise_s + t.decode_s;
  rec["timings_s"] = {{"load", t.load_s},     {"encode", t.encode_s}, {"denoise", t.denoise_s},
                      {"decode", t.decode_s}, {"mux", t.mux_s},       {"total", wall_s}};
  rec["compute_s_per_video_s"] = item_compute / rec["video_s"].get<double>();
  manifest_->append(rec);
  lock.release();
  ++rendered_;
  compute_s_ += item_compute;
  video_s_ += rec["video_s"].get<double>();
  render_wall_s_ += wall_s - t.load_s;
  events_.event("item_done", {{"id", item.id}, {"file", item.file}, {"sha256", rec["sha256"]}, {"seconds", wall_s},
                              {"done", n + 1}, {"of", todo_.size()}});
}

void BatchRun::record_failure(const BatchItem& item, const Error& e, bool interrupted, ItemLock& lock) {
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
    manifest_->append(rec);
  } catch (const Error& m) {
    if (std::string(m.what()) != e.what()) spdlog::warn("could not record the failure: {}", m.what());
  }
  lock.release();
  events_.event(interrupted ? "item_interrupted" : "item_failed",
                {{"id", item.id}, {"code", e.code()}, {"message", e.what()}});
}

void BatchRun::summary(const char* how) {
  const double per = video_s_ > 0 ? compute_s_ / video_s_ : 0.0;
  const char* unit = engine_->device() == Device::CUDA ? "GPU" : "CPU";
  if (!o_.defaults.quiet)
    fmt::print(stderr,
               "t2v: batch {}: {} rendered, {} skipped (done), {} kept, {} failed, {} locked by other workers; "
               "{:.1f} {}-seconds per video-second; {:.1f} s\n",
               how, rendered_, skipped_, kept_, failed_, locked_, per, unit, seconds_since(t_start_));
  events_.event("batch_done", {{"status", how}, {"rendered", rendered_}, {"skipped", skipped_}, {"kept", kept_},
                               {"failed", failed_}, {"locked", locked_}, {"compute_s_per_video_s", per}});
}

int BatchRun::run() {
  if (std::optional<int> code = plan()) return *code;
  g_cancel.store(false);
  install_signal_handlers();
  int exit_code = kExitOk;
  for (size_t n = 0; n < todo_.size(); ++n) {
    if (g_cancel.load()) break;
    const BatchItem& item = *todo_[n].item;
    ItemLock lock;
    std::optional<Check> check = claim(todo_[n], lock);
    if (!check) continue;
    const auto t0 = Clock::now();
    try {
      PipelineResult r = render(item, *check, n);
      record_done(item, r, seconds_since(t0), n, lock);
    } catch (const Error& e) {
      const bool interrupted = e.code() == kExitTempFail && g_cancel.load();
      record_failure(item, e, interrupted, lock);
      if (interrupted) {
        summary("interrupted");
        fmt::print(stderr, "t2v: interrupted; run the same command again to resume (exit 75)\n");
        return kExitTempFail;
      }
      ++failed_;
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
  if (o_.skip_invalid && list_.invalid_lines > 0 && exit_code == kExitOk) exit_code = kExitDataErr;
  summary(failed_ ? "finished with failures" : "finished");
  return exit_code;
}

}  // namespace

int run_batch(BatchOptions& o) { return BatchRun(o).run(); }

}  // namespace t2v
