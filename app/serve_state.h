// What the HTTP handlers (serve_http.cpp) and the render worker (serve_worker.cpp) of
// `t2v serve` share: the job store, the served model, the server's phase and the running job.
#pragma once

#include <atomic>
#include <mutex>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "app/latent_preview.h"
#include "app/serve.h"
#include "app/serve_jobs.h"

namespace httplib {
class Server;
}

namespace t2v {

class Engine;

enum class ServePhase { kLoading, kReady, kDraining };

class ServeState {
 public:
  ServeState(const ServeOptions& o, std::string model_name, LatentRgbMap preview_map)
      : opts(o), model_name(std::move(model_name)), preview_map(std::move(preview_map)), store(o.jobs_dir) {}

  const ServeOptions& opts;
  const std::string model_name;
  const LatentRgbMap preview_map;
  JobStore store;
  std::atomic<ServePhase> phase{ServePhase::kLoading};
  // Polled by the running render after every denoising step (Pipeline::render's CancelFlag).
  std::atomic<bool> cancel{false};

  // SIGTERM/SIGINT: no new jobs; the running one stops at its next step.
  void begin_drain();
  bool draining() const { return phase.load() == ServePhase::kDraining; }
  // The worker starting a job: false when draining (it takes no more).
  bool start_running(const std::string& id);
  void stop_running();
  // DELETE of the running job stops its render at the next step; true when it was running.
  bool cancel_if_running(const std::string& id);

  // The startup failure that ends the server (the model does not load), if any.
  void set_load_error(int code, const std::string& message);
  std::optional<std::pair<int, std::string>> load_error() const;

 private:
  mutable std::mutex mu_;
  std::string running_;
  std::optional<std::pair<int, std::string>> load_error_;
};

// The OpenAI video object of a job (+ t2v's settings fields).
nlohmann::json video_object(const Job& job);

// The routes, authentication, limits and error shapes (serve_http.cpp).
void add_routes(httplib::Server& svr, ServeState& st);

// The render loop (serve_worker.cpp): loads the model, then renders queued jobs oldest first
// until the server drains. Returns when it stops.
void run_worker(ServeState& st, Engine& engine);

}  // namespace t2v
