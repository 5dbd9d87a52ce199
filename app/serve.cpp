// `t2v serve`: startup in the order that makes mistakes cheap (options, device, model paths and
// the jobs dir are checked before the port is bound; the model loads while the server already
// answers, with 503 for submissions), three threads (HTTP, the render worker, signals), and the
// shutdown: SIGTERM/SIGINT drain the worker, then the HTTP server stops.
#include "app/serve.h"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <thread>

#include <fmt/format.h>
#include <httplib.h>
#include <spdlog/spdlog.h>

#include "app/engine.h"
#include "app/latent_preview.h"
#include "app/model_defaults.h"
#include "app/serve_state.h"
#include "core/error.h"
#include "video_io/atomic_file.h"
#include "video_io/mp4_writer.h"

namespace t2v {

namespace {

void check_options(ServeOptions& o) {
  auto usage = [](std::string msg, std::string hint) { return Error(kExitUsage, msg, hint); };
  if (o.port < 0 || o.port > 65535)
    throw usage(fmt::format("--port {} is out of range", o.port), "use 0..65535 (0: any free port)");
  if (o.host.empty()) throw usage("--host is empty", "use 127.0.0.1 (this machine) or 0.0.0.0 (every interface)");
  if (o.jobs_dir.empty()) throw usage("--jobs-dir is empty", "name a folder for the jobs");
  if (o.max_queue < 1 || o.max_queue > 1000000)
    throw usage(fmt::format("--max-queue {} is out of range", o.max_queue), "use 1..1000000");
  if (o.preview_every < 0)
    throw usage(fmt::format("--preview-every {} is negative", o.preview_every), "0 turns previews off");
  if (o.http_threads < 2 || o.http_threads > 1024)
    throw usage(fmt::format("--http-threads {} is out of range", o.http_threads), "use 2..1024");
  if (o.read_timeout_s < 1 || o.read_timeout_s > 3600)
    throw usage(fmt::format("--read-timeout {} is out of range", o.read_timeout_s), "use 1..3600 seconds");
  if (!(o.lock_timeout_s > 0)) throw usage("--lock-timeout must be positive", "the default is 43200 (12 h)");
  // The defaults every request starts from must pass generate's checks themselves.
  GenerateOptions probe = o.defaults;
  probe.prompt = "a check of the defaults";
  probe.output = "video.mp4";
  validate_generate_options(probe);
}

// SIGINT and SIGTERM may arrive on any thread (the BLAS and OpenMP threads exist before
// main), so the handler only forwards the signal through a pipe to a thread of our own, where
// the reaction is ordinary code: drain once; a second SIGINT quits at once (the jobs on disk
// are safe: a restart runs them). Byte 0 on the pipe ends that thread.
int g_signal_pipe[2] = {-1, -1};
std::atomic<int> g_signals{0};

void on_signal(int sig) {
  if (sig == SIGINT && g_signals.load() > 0) _exit(130);
  g_signals.fetch_add(1);
  const char b = static_cast<char>(sig);
  ssize_t ignored = ::write(g_signal_pipe[1], &b, 1);
  (void)ignored;
}

void install_signal_handlers() {
  if (::pipe2(g_signal_pipe, O_CLOEXEC) != 0) throw Error(kExitSoftware, "cannot create the signal pipe");
  struct sigaction sa {};
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;
  for (int sig : {SIGINT, SIGTERM}) sigaction(sig, &sa, nullptr);
  ::signal(SIGPIPE, SIG_IGN);  // a client that hangs up mid-answer must not end the server
}

void signal_loop(ServeState& st) {
  for (;;) {
    char b = 0;
    ssize_t n = ::read(g_signal_pipe[0], &b, 1);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0 || b == 0) return;
    if (!st.draining()) {
      static const char msg[] =
          "t2v serve: stopping: no new jobs; the running one stops after its current step (Ctrl-C again quits at once)\n";
      ssize_t ignored = ::write(STDERR_FILENO, msg, sizeof msg - 1);
      (void)ignored;
    }
    st.begin_drain();
  }
}

}  // namespace

int run_serve(ServeOptions& o) {
  check_options(o);
  check_h264_encoder();
  // The device and the model's paths before anything is bound or written: a missing GPU or
  // model is one line and an exit code.
  EngineOptions eo = engine_options(o.defaults);
  eo.keep_text_encoder = true;  // a server encodes prompts for every job
  Engine engine(eo);
  const ModelPaths& paths = engine.resolve_model(o.defaults);
  if (!paths.any()) throw Error(kExitNoInput, "no model to serve", "pass --model FOLDER (a diffusers Wan2.1 folder)");
  LatentRgbMap map = find_latent_rgb_map(model_defaults_folder(o.defaults), paths.vae);
  ServeState st(o, paths.name, std::move(map));
  for (const std::string& w : st.store.open()) spdlog::warn("{}", w);
  clean_stale_temp_files(st.store.dir());

  install_signal_handlers();

  httplib::Server svr;
  const int threads = o.http_threads;
  svr.new_task_queue = [threads] { return new httplib::ThreadPool(static_cast<size_t>(threads)); };
  svr.set_read_timeout(o.read_timeout_s, 0);
  svr.set_write_timeout(30, 0);
  svr.set_keep_alive_timeout(5);
  svr.set_keep_alive_max_count(100);
  // Headers and body go out as separate writes: without this, Nagle's algorithm holds the body
  // until the client's delayed ACK, some 40 ms on every answer of a kept-alive connection.
  svr.set_tcp_nodelay(true);
  add_routes(svr, st);
  int port = o.port;
  if (port == 0) {
    port = svr.bind_to_any_port(o.host);
    if (port <= 0) port = -1;
  } else if (!svr.bind_to_port(o.host, port)) {
    port = -1;
  }
  if (port < 0)
    throw Error(kExitUnavailable, fmt::format("cannot listen on {}:{}", o.host, o.port),
                "the port is in use or the address is not this machine's; choose another --port or --host");
  fmt::print(stdout, "t2v serve: listening on http://{}:{}\n", o.host, port);
  std::fflush(stdout);
  if (!o.quiet)
    fmt::print(stderr, "t2v serve: model {}, jobs in {} ({} waiting), live previews from {}\n", st.model_name,
               st.store.dir(), st.store.queued(), st.opts.preview_every > 0 ? st.preview_map.source : "(off)");

  std::atomic<bool> http_done{false};
  std::thread http([&svr, &http_done] {
    svr.listen_after_bind();
    http_done = true;
  });
  std::thread signals([&st] { signal_loop(st); });
  std::thread worker([&st, &engine] { run_worker(st, engine); });
  worker.join();  // returns once draining, or when the model failed to load
  while (!svr.is_running() && !http_done.load()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  svr.stop();
  http.join();
  const char stop = 0;
  ssize_t ignored = ::write(g_signal_pipe[1], &stop, 1);
  (void)ignored;
  signals.join();

  if (std::optional<std::pair<int, std::string>> e = st.load_error()) {
    fmt::print(stderr, "t2v: error: the model did not load: {}\n", e->second);
    return e->first;
  }
  const size_t left = st.store.queued_on_disk();
  if (!o.quiet)
    fmt::print(stderr, "t2v serve: stopped; {} job(s) waiting{}\n", left,
               left ? " (they run when a server starts on this jobs dir again; exit 75)" : "");
  return left ? kExitTempFail : kExitOk;
}

}  // namespace t2v
