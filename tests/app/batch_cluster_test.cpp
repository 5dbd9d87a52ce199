// `t2v batch` under the schedulers and viewers it is used with: the sbatch array script of
// samples/slurm on a real one-node Slurm cluster, and the gallery page in headless
// Chromium. Each skips, saying why, where its program cannot run.
#include <gtest/gtest.h>

#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <map>
#include <set>
#include <sstream>

#include "app/sha256.h"
#include "cli_test_util.h"
#include "video_io/atomic_file.h"
#include "video_io/mp4_reader.h"

namespace t2v::test {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

std::string join(const std::vector<std::string>& v) {
  std::string s;
  for (const std::string& a : v) s += (s.empty() ? "" : " ") + a;
  return s;
}

// The first line of `text` that starts with `prefix`, without it.
std::string line_after(const std::string& text, const std::string& prefix) {
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);)
    if (line.rfind(prefix, 0) == 0) return line.substr(prefix.size());
  return "";
}

TEST(BatchSlurm, ArrayScriptOnAOneNodeClusterRendersEveryItemOnce) {
  TempDir dir;
  const std::string list = dir.file("prompts.jsonl"), out = dir.file("videos");
  write_text(list, prompt_list(12));
  // The tiny model settings as options to `t2v batch` (paths without spaces: T2V_ARGS is split on them).
  std::vector<std::string> tiny = tiny_model_args();
  ASSERT_EQ(tiny.at(1).find(' '), std::string::npos) << "model path with a space: " << tiny.at(1);
  RunResult r = run_program({"/bin/bash", std::string(T2V_SOURCE_DIR) + "/tests/app/slurm_cluster.sh",
                             dir.file("cluster"), std::string(T2V_SOURCE_DIR) + "/samples/slurm/t2v_array.sbatch",
                             T2V_EXE, list, out, join(tiny)});
  if (r.code == 77) GTEST_SKIP() << "Slurm cannot run here: " << line_after(r.out, "SKIP: ");
  ASSERT_EQ(r.code, 0) << r.out << r.err;

  std::map<std::string, int> done;
  std::set<std::string> shards;
  for (const json& rec : manifest_lines(out)) {
    ASSERT_EQ(rec["status"], "done") << rec.dump();
    ++done[rec["id"].get<std::string>()];
    shards.insert(rec["shard"].get<std::string>());
    const std::string path = out + "/" + rec["file"].get<std::string>();
    EXPECT_EQ(sha256_file(path), rec["sha256"].get<std::string>()) << path;
    EXPECT_EQ(mp4_structure_problem(path), "") << path;
  }
  EXPECT_EQ(done.size(), 12u) << r.out;
  for (const auto& [id, n] : done) EXPECT_EQ(n, 1) << id << " rendered " << n << " times";
  // The array's four tasks each took their share (the shard comes from SLURM_ARRAY_TASK_ID).
  EXPECT_EQ(shards, (std::set<std::string>{"0/4", "1/4", "2/4", "3/4"})) << r.out;
  int mp4 = 0;
  for (const auto& e : fs::directory_iterator(out)) mp4 += e.path().extension() == ".mp4";
  EXPECT_EQ(mp4, 12);
}

std::string find_chromium() {
  for (const char* p : {"/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome"})
    if (access(p, X_OK) == 0) return p;
  return "";
}

// The gallery as a browser sees it: every <video> loads its MP4 and reports the duration
// the file was rendered with.
TEST(GalleryInChromium, EveryVideoReportsItsDuration) {
  const std::string chromium = find_chromium();
  if (chromium.empty()) GTEST_SKIP() << "Chromium is not installed (Debian: apt-get install chromium)";
  TempDir dir;
  const std::string out = dir.file("videos");
  write_text(dir.file("list.jsonl"),
             "{\"id\": \"a\", \"prompt\": \"a red ball\", \"frames\": 9, \"fps\": 8}\n"
             "{\"id\": \"b\", \"prompt\": \"a blue <cube>\", \"frames\": 17, \"fps\": 16}\n"
             "{\"id\": \"c d\", \"prompt\": \"a green cone\", \"frames\": 5, \"fps\": 24}\n");
  RunResult r = run_t2v(batch_args(dir.file("list.jsonl"), out, {"--frames", "5"}));
  ASSERT_EQ(r.code, 0) << r.err;
  r = run_t2v({"gallery", out});
  ASSERT_EQ(r.code, 0) << r.err;

  // The page itself, plus a script that lists each video's duration once all have loaded.
  std::string html = read_text(out + "/index.html");
  const size_t body = html.rfind("</body>");
  ASSERT_NE(body, std::string::npos);
  html.insert(body, R"(<script>
window.addEventListener('load', () => {
  const vs = [...document.querySelectorAll('video')];
  let left = vs.length;
  const report = () => {
    const pre = document.createElement('pre');
    pre.id = 'probe';
    pre.textContent = vs.map(v => 'VIDEO ' + v.getAttribute('src') + ' ' + v.duration + ' ' +
                                  (v.error ? 'error-' + v.error.code : 'ok')).join('\n');
    document.body.appendChild(pre);
  };
  if (!left) report();
  for (const v of vs) {
    const done = () => { if (--left === 0) report(); };
    if (v.readyState >= 1) { done(); continue; }
    v.addEventListener('loadedmetadata', done, {once: true});
    v.addEventListener('error', done, {once: true});
  }
});
</script>)");
  write_text(out + "/probe.html", html);
  r = run_program({"/usr/bin/timeout", "60", chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                   "--user-data-dir=" + dir.file("profile"), "--virtual-time-budget=15000", "--dump-dom",
                   "file://" + out + "/probe.html"});
  ASSERT_EQ(r.code, 0) << r.err;

  const std::map<std::string, double> expected = {{"a.mp4", 9.0 / 8}, {"b.mp4", 17.0 / 16}, {"c%20d.mp4", 5.0 / 24}};
  std::map<std::string, double> seen;
  const size_t from = r.out.find("<pre id=\"probe\">");
  ASSERT_NE(from, std::string::npos) << "the page did not finish loading its videos:\n" << r.out.substr(0, 4000);
  std::istringstream in(r.out.substr(from, r.out.find("</pre>", from) - from));
  for (std::string line; std::getline(in, line);) {
    const size_t at = line.find("VIDEO ");
    if (at == std::string::npos) continue;
    std::istringstream f(line.substr(at + 6));
    std::string src, duration, state;
    f >> src >> duration >> state;
    EXPECT_EQ(state, "ok") << src;
    seen[src] = std::atof(duration.c_str());
  }
  ASSERT_EQ(seen.size(), expected.size()) << r.out.substr(0, 4000);
  for (const auto& [src, d] : expected) {
    ASSERT_TRUE(seen.count(src)) << src << " not on the page";
    EXPECT_NEAR(seen[src], d, 1e-3) << src;
    EXPECT_TRUE(std::isfinite(seen[src])) << src;
  }
}

}  // namespace
}  // namespace t2v::test
