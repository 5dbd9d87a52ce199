// The page `t2v serve` answers at /, used in headless Chromium the way a person would: type a
// prompt, press Generate, watch the job's progress and live preview, see the video play. The
// browser is driven over the DevTools protocol on a pipe (--remote-debugging-pipe: JSON
// messages ending in NUL on fds 3 and 4). Skips, saying why, where Chromium is not installed.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <thread>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "serve_test_util.h"

namespace t2v::test {
namespace {

using nlohmann::json;
using Clock = std::chrono::steady_clock;

std::string find_browser() {
  for (const char* p : {"/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome"})
    if (access(p, X_OK) == 0) return p;
  return "";
}

class Browser {
 public:
  Browser(const std::string& exe, const std::string& profile) {
    int to_chrome[2], from_chrome[2];
    if (pipe2(to_chrome, O_CLOEXEC) != 0 || pipe2(from_chrome, O_CLOEXEC) != 0) return;
    pid_ = fork();
    if (pid_ == 0) {
      // Out of the way first: the pipe's own fds may be 3 or 4.
      const int r = fcntl(to_chrome[0], F_DUPFD_CLOEXEC, 10), w = fcntl(from_chrome[1], F_DUPFD_CLOEXEC, 10);
      dup2(r, 3);  // dup2 leaves the copies open across exec
      dup2(w, 4);
      int null = ::open("/dev/null", O_WRONLY);
      dup2(null, 1);
      dup2(null, 2);
      const std::string user = "--user-data-dir=" + profile;
      execl(exe.c_str(), exe.c_str(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
            "--no-first-run", "--autoplay-policy=no-user-gesture-required", "--remote-debugging-pipe", user.c_str(),
            "about:blank", static_cast<char*>(nullptr));
      _exit(127);
    }
    close(to_chrome[0]);
    close(from_chrome[1]);
    out_ = to_chrome[1];
    in_ = from_chrome[0];
  }
  ~Browser() {
    if (out_ >= 0) close(out_);
    if (in_ >= 0) close(in_);
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
  }

  // Sends one command and waits for its answer (events in between are dropped).
  json call(const std::string& method, json params = json::object(), const std::string& tab = "") {
    json m = {{"id", ++next_id_}, {"method", method}, {"params", std::move(params)}};
    if (!tab.empty()) m["sessionId"] = tab;
    const std::string text = m.dump() + std::string(1, '\0');
    if (::write(out_, text.data(), text.size()) != static_cast<ssize_t>(text.size())) return json();
    const auto t0 = Clock::now();
    while (std::chrono::duration<double>(Clock::now() - t0).count() < 30) {
      size_t nul = buffer_.find('\0');
      if (nul == std::string::npos) {
        pollfd p{in_, POLLIN, 0};
        if (::poll(&p, 1, 200) <= 0) continue;
        char buf[65536];
        ssize_t n = ::read(in_, buf, sizeof buf);
        if (n <= 0) return json();
        buffer_.append(buf, static_cast<size_t>(n));
        continue;
      }
      json r = json::parse(buffer_.substr(0, nul), nullptr, false);
      buffer_.erase(0, nul + 1);
      if (r.is_object() && r.value("id", -1) == next_id_) return r;
    }
    return json();
  }

  // Opens `url` in a new tab; the id of its attached DevTools target, to evaluate in.
  std::string open(const std::string& url) {
    json t = call("Target.createTarget", {{"url", url}});
    if (!t.contains("result")) return "";
    json a = call("Target.attachToTarget", {{"targetId", t["result"]["targetId"]}, {"flatten", true}});
    return a.contains("result") ? a["result"].value("sessionId", "") : "";
  }

  // The value of a JavaScript expression in the page (promises awaited).
  json eval(const std::string& tab, const std::string& expression) {
    json r = call("Runtime.evaluate", {{"expression", expression}, {"returnByValue", true}, {"awaitPromise", true}},
                  tab);
    if (!r.contains("result") || !r["result"].contains("result")) return json();
    return r["result"]["result"].value("value", json());
  }

  bool started() const { return pid_ > 0 && in_ >= 0; }

 private:
  pid_t pid_ = -1;
  int out_ = -1, in_ = -1;
  int next_id_ = 0;
  std::string buffer_;
};

// What the page shows about its first video, as JSON text.
constexpr const char* kProbe = R"((() => {
  const li = document.querySelector('#videos li');
  const v = li && li.querySelector('video');
  const img = document.getElementById('running-preview');
  return JSON.stringify({
    status: li ? li.dataset.status : null,
    progress: li ? li.querySelector('progress').value : null,
    preview: document.getElementById('running').style.display === 'block' && img.complete && img.naturalWidth > 0,
    ready: v ? v.readyState : -1,
    duration: v ? v.duration : null,
    error: v && v.error ? v.error.code : null,
    message: document.getElementById('message').textContent});
})())";

TEST(ServeBrowser, PageSubmitsShowsProgressAndPlaysTheVideo) {
  const std::string exe = find_browser();
  if (exe.empty()) GTEST_SKIP() << "Chromium is not installed (Debian: apt-get install chromium)";
  TempDir dir;
  ServeProcess s(dir.file("jobs"));
  Browser b(exe, dir.file("profile"));
  ASSERT_TRUE(b.started());
  const std::string tab = b.open(fmt::format("http://127.0.0.1:{}/", s.port()));
  ASSERT_FALSE(tab.empty()) << "Chromium did not open the page";
  auto until = [&](const std::string& expr, double timeout_s) {
    const auto t0 = Clock::now();
    while (std::chrono::duration<double>(Clock::now() - t0).count() < timeout_s) {
      if (b.eval(tab, expr) == json(true)) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return false;
  };
  ASSERT_TRUE(until("document.readyState === 'complete' && !!document.getElementById('submit')", 30));

  // A person types a prompt and settings and presses Generate (about 2 s of rendering).
  b.eval(tab, R"((() => {
    document.getElementById('prompt').value = 'a red ball rolling to the left';
    document.getElementById('size').value = '64x64';
    document.getElementById('frames').value = '17';
    document.getElementById('steps').value = '20';
    document.getElementById('seed').value = '3';
    document.getElementById('submit').click();
    return true;
  })())");

  bool saw_progress = false, saw_preview = false;
  json last;
  const auto t0 = Clock::now();
  while (std::chrono::duration<double>(Clock::now() - t0).count() < 90) {
    json text = b.eval(tab, kProbe);
    if (text.is_string()) last = json::parse(text.get<std::string>(), nullptr, false);
    if (last.is_object()) {
      if (last["status"] == "in_progress" && last["progress"].is_number() && last["progress"].get<double>() > 0)
        saw_progress = true;
      if (last["preview"] == true) saw_preview = true;
      if (last["ready"].is_number() && last["ready"].get<int>() >= 2) break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ASSERT_TRUE(last.is_object()) << "the page did not answer";
  EXPECT_EQ(last["message"], "") << last.dump();
  EXPECT_EQ(last["status"], "completed") << last.dump();
  EXPECT_TRUE(saw_progress) << "the page never showed the job in progress: " << last.dump();
  EXPECT_TRUE(saw_preview) << "the page never showed a live preview: " << last.dump();
  ASSERT_GE(last["ready"].get<int>(), 2) << "the video did not load: " << last.dump();
  EXPECT_TRUE(last["error"].is_null()) << last.dump();
  EXPECT_NEAR(last["duration"].get<double>(), 17.0 / 8, 1e-3) << last.dump();  // the model's 8 fps
  // It plays (muted autoplay: its clock moves), with its settings beside it.
  EXPECT_TRUE(until("(() => { const v = document.querySelector('#videos li video');"
                    " return !!v && !v.paused && v.currentTime > 0; })()",
                    15))
      << "the video does not play";
  json settings = b.eval(tab, "document.querySelector('#videos li .settings').textContent");
  ASSERT_TRUE(settings.is_string());
  for (const char* part : {"64x64", "17 frames", "20 steps", "seed 3"})
    EXPECT_NE(settings.get<std::string>().find(part), std::string::npos) << part << " in " << settings.dump();
  // The page's job is the API's job.
  json list = http_get(s, "/v1/videos").json();
  ASSERT_EQ(list["data"].size(), 1u);
  EXPECT_EQ(list["data"][0]["prompt"], "a red ball rolling to the left");
  EXPECT_EQ(list["data"][0]["seed"], 3);
  EXPECT_EQ(s.stop(), 0);
}

}  // namespace
}  // namespace t2v::test
