// The render loop of `t2v serve`: load the model once (a one-step warm-up render reads every
// weight, so a broken model stops the server at startup instead of failing every job), then
// claim the oldest queued job (its lock, then a fresh look at its files, as batch does), render
// it through the pipeline and record the result; at SIGTERM the running job stops at its next
// denoising step and goes back to the queue.
#include <chrono>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <optional>
#include <thread>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "app/batch.h"
#include "app/engine.h"
#include "app/pipeline.h"
#include "app/progress.h"
#include "app/render_request.h"
#include "app/serve_request.h"
#include "app/serve_state.h"
#include "app/video_sink.h"
#include "core/error.h"
#include "video_io/atomic_file.h"
#include "video_io/mp4_reader.h"
#include "video_io/mp4_writer.h"
#include "video_io/preview.h"

namespace t2v {

namespace fs = std::filesystem;
using nlohmann::json;
using Clock = std::chrono::steady_clock;

void ServeState::begin_drain() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    phase = ServePhase::kDraining;
    cancel = true;
  }
  store.notify_all();
}

bool ServeState::start_running(const std::string& id) {
  std::lock_guard<std::mutex> lock(mu_);
  if (phase.load() == ServePhase::kDraining) return false;
  running_ = id;
  cancel = false;
  return true;
}

void ServeState::stop_running() {
  std::lock_guard<std::mutex> lock(mu_);
  running_.clear();
}

bool ServeState::cancel_if_running(const std::string& id) {
  std::lock_guard<std::mutex> lock(mu_);
  if (running_ != id) return false;
  cancel = true;
  return true;
}

void ServeState::set_load_error(int code, const std::string& message) {
  std::lock_guard<std::mutex> lock(mu_);
  load_error_ = std::make_pair(code, message);
}

std::optional<std::pair<int, std::string>> ServeState::load_error() const {
  std::lock_guard<std::mutex> lock(mu_);
  return load_error_;
}

namespace {

int64_t unix_now() { return static_cast<int64_t>(std::time(nullptr)); }

// Reads every weight: the stages on a 16x16, one-step video whose MP4 is dropped unfinished
// (one frame; an image-to-video model also conditions on a 16x16 grey image, and the
// first-last-frame model needs its 81 frames).
void warm_up(Engine& engine, const GenerateOptions& defaults, const std::string& dir) {
  RenderRequest r = render_request(defaults, 0);
  r.prompt = "warm-up";
  r.width = r.height = 16;
  r.frames = 1;
  r.steps = 1;
  r.output = dir + "/.warm-up.mp4";
  r.overwrite = true;
  r.quiet = true;
  r.json = r.progress_bar = r.preview = false;
  r.frames_dump.clear();
  Pipeline& p = engine.pipeline();
  const int images = p.input_images().first;
  if (images > 0) {
    const std::vector<uint8_t> grey(16 * 16 * 3, 128);
    const std::vector<uint8_t> png = png_bytes(RgbImage{grey.data(), 16, 16, 16 * 3});
    r.image = dir + "/.warm-up-image.png";
    write_file_atomic(r.image, png.data(), png.size(), /*overwrite=*/true);
    if (images > 1) {
      r.last_image = r.image;
      r.frames = 81;
    }
  }
  Progress progress(false, false);
  StageTimes t;
  p.prepare_images(r);
  EncodedPrompts text = p.encode_prompts(r, t);
  std::optional<I2VCondition> cond;
  if (!r.image.empty()) cond = p.condition_on_images(r, t);
  Tensor latents = p.denoise(r, text, progress, nullptr, t, cond ? &*cond : nullptr);
  VideoSink sink(r, json::object());
  p.decode_frames(r, latents, sink, nullptr, t);
  if (!r.image.empty()) std::filesystem::remove(r.image);
}

// thumbnail.png (the first frame) and spritesheet.png (a contact sheet of 8 frames), read back
// from the finished MP4.
void write_stills(const std::string& dir, int frames) {
  Mp4Reader reader;
  reader.open(dir + "/video.mp4");
  const int w = reader.info().width, h = reader.info().height;
  const std::vector<int> wanted = evenly_spaced_indices(frames, 8);
  std::vector<uint8_t> kept, frame;
  int index = 0, n = 0;
  while (n < static_cast<int>(wanted.size()) && reader.read_frame(frame)) {
    if (index++ != wanted[static_cast<size_t>(n)]) continue;
    kept.insert(kept.end(), frame.begin(), frame.end());
    ++n;
  }
  if (n == 0) throw Error(kExitDataErr, fmt::format("{}/video.mp4 has no frames", dir));
  std::vector<RgbImage> views = frames_view(kept.data(), n, w, h);
  std::vector<uint8_t> png = png_bytes(views[0]);
  write_file_atomic(dir + "/thumbnail.png", png.data(), png.size(), /*overwrite=*/true);
  ContactSheetOptions cs;
  cs.overwrite = true;
  write_contact_sheet(dir + "/spritesheet.png", views, cs);
}

// The API's error code for a render that failed with a t2v::Error.
const char* failure_code(int exit_code) {
  switch (exit_code) {
    case kExitUsage:
    case kExitDataErr: return "invalid_request";
    case kExitIoErr:
    case kExitCantCreate: return "storage_error";
    case kExitUnavailable: return "unavailable";
    default: return "render_failed";
  }
}

class Worker {
 public:
  Worker(ServeState& st, Engine& engine) : st_(st), engine_(engine) {}
  void run();

 private:
  struct Claim {
    Job job;
    ItemLock lock;
  };
  bool claim(Claim& c);
  void render(Claim& c);
  void finish(Job& job, JobStatus status, const std::string& code = "", const std::string& message = "");

  ServeState& st_;
  Engine& engine_;
};

bool Worker::claim(Claim& c) {
  for (const std::string& id : st_.store.queued_oldest_first()) {
    std::string holder;
    if (!c.lock.acquire(st_.store.dir(), id, st_.opts.lock_timeout_s, &holder)) continue;  // another server has it
    std::optional<Job> j = st_.store.reload(id);
    if (!j || j->status == JobStatus::kCompleted || j->status == JobStatus::kFailed) {
      c.lock.release();
      continue;
    }
    c.job = *j;
    return true;
  }
  return false;
}

void Worker::finish(Job& job, JobStatus status, const std::string& code, const std::string& message) {
  job.status = status;
  job.error_code = code;
  job.error_message = message;
  if (status == JobStatus::kCompleted) {
    job.progress = 100;
    job.completed_at = unix_now();
  } else if (status == JobStatus::kFailed) {
    job.completed_at = unix_now();
  } else {
    job.progress = 0;
  }
  try {
    st_.store.save(job);
  } catch (const Error& e) {
    spdlog::error("{}: cannot record its state: {}", job.id, e.what());
  }
}

void Worker::render(Claim& c) {
  Job& job = c.job;
  const std::string dir = st_.store.job_dir(job.id);
  job.status = JobStatus::kInProgress;
  job.progress = 0;
  job.attempts += 1;
  job.started_at = unix_now();
  job.completed_at.reset();
  job.error_code.clear();
  job.error_message.clear();
  if (!st_.store.save(job)) return;  // deleted meanwhile
  st_.store.journal("started", job.id, {{"attempt", job.attempts}});
  const auto t0 = Clock::now();
  try {
    if (job.settings.value("model", "") != st_.model_name)
      throw Error(kExitUnavailable, fmt::format("the job asks for model \"{}\"; this server serves \"{}\"",
                                                job.settings.value("model", ""), st_.model_name));
    JobSettings s = job_settings_from_json(job.settings, st_.opts.defaults, dir);
    RenderRequest r = render_request(s.options, s.seed);
    r.output = dir + "/video.mp4";
    r.overwrite = true;  // the job's own folder, under its lock
    r.quiet = true;
    r.json = r.progress_bar = r.preview = false;
    clean_stale_temp_files(dir);  // what a killed render of this job left
    const std::string mp4 = r.output;
    std::error_code ec;
    if (fs::exists(mp4, ec) && mp4_structure_problem(mp4).empty()) {
      // Rendered before a crash cut the record short: the file is this job's (only it writes
      // here, and only complete files take the final name).
      spdlog::info("{}: video.mp4 was complete; adopting it", job.id);
    } else {
      check_free_space(dir, estimate_output_bytes(r.width, r.height, r.frames) + (1u << 20));
      std::optional<LivePreview> preview;
      if (st_.opts.preview_every > 0) preview.emplace(st_.preview_map, dir + "/preview.png", st_.opts.preview_every);
      const std::string id = job.id;
      StepObserver observer = [&](const DenoiseStep& step) {
        const bool wrote = preview && preview->on_step(step);
        // Denoising is 0..90 %; decoding and the MP4 the rest.
        st_.store.set_progress(id, 90 * step.step / step.steps, wrote ? step.step : 0);
      };
      Progress progress(false, false);
      engine_.pipeline().render(r, progress, &st_.cancel, observer);
    }
    st_.store.set_progress(job.id, 95, 0);
    write_stills(dir, r.frames);
    // The journal first: a client that sees "completed" finds the record already there.
    st_.store.journal(
        "done", job.id,
        {{"attempt", job.attempts}, {"seconds", std::chrono::duration<double>(Clock::now() - t0).count()}});
    finish(job, JobStatus::kCompleted);
    if (!st_.opts.quiet)
      fmt::print(stderr, "t2v serve: {} completed ({} frames, {}x{}) in {:.1f} s\n", job.id, r.frames, r.width,
                 r.height, std::chrono::duration<double>(Clock::now() - t0).count());
  } catch (const Error& e) {
    if (!st_.store.get(job.id)) return;  // deleted: its files are gone with it
    if (e.code() == kExitTempFail && st_.cancel.load()) {
      finish(job, JobStatus::kQueued);  // shutdown: it runs again from the start
      st_.store.journal("requeued", job.id, {{"attempt", job.attempts}, {"reason", "shutdown"}});
      if (!st_.opts.quiet) fmt::print(stderr, "t2v serve: {} stopped at a step boundary; queued again\n", job.id);
      return;
    }
    st_.store.journal("failed", job.id, {{"code", e.code()}, {"message", e.what()}});
    finish(job, JobStatus::kFailed, failure_code(e.code()), e.what());
    spdlog::error("{} failed: {}", job.id, e.what());
  } catch (const std::exception& e) {
    if (!st_.store.get(job.id)) return;
    st_.store.journal("failed", job.id, {{"code", kExitSoftware}, {"message", e.what()}});
    finish(job, JobStatus::kFailed, "internal_error", e.what());
    spdlog::error("{} failed: {}", job.id, e.what());
  }
}

// T2V_SERVE_LOAD_GATE=FILE holds the model load until FILE exists: the test suite's way to see
// the server while it loads (503 for submissions), whatever the model's size.
void wait_for_load_gate(const ServeState& st) {
  const char* gate = std::getenv("T2V_SERVE_LOAD_GATE");
  if (!gate || !*gate) return;
  std::error_code ec;
  while (!fs::exists(gate, ec) && !st.draining()) std::this_thread::sleep_for(std::chrono::milliseconds(20));
}

void Worker::run() {
  try {
    wait_for_load_gate(st_);
    if (st_.draining()) return;
    const auto t0 = Clock::now();
    warm_up(engine_, st_.opts.defaults, st_.store.dir());
    const auto [fewest, most] = engine_.pipeline().input_images();
    st_.min_images = fewest;
    st_.max_images = most;
    if (!st_.opts.quiet)
      fmt::print(stderr, "t2v serve: model {} loaded in {:.1f} s\n", st_.model_name,
                 std::chrono::duration<double>(Clock::now() - t0).count());
  } catch (const Error& e) {
    st_.set_load_error(e.code(), e.what());
    return;
  } catch (const std::exception& e) {
    st_.set_load_error(kExitSoftware, e.what());
    return;
  }
  ServePhase loading = ServePhase::kLoading;
  st_.phase.compare_exchange_strong(loading, ServePhase::kReady);  // unless a signal came first
  while (!st_.draining()) {
    Claim c;
    if (!claim(c)) {
      st_.store.wait_for_submission(1.0);  // and look again: another server may release a lock
      continue;
    }
    if (!st_.start_running(c.job.id)) break;
    render(c);
    st_.stop_running();
  }
}

}  // namespace

void run_worker(ServeState& st, Engine& engine) { Worker(st, engine).run(); }

}  // namespace t2v
