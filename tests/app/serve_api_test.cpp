// `t2v serve` driven over HTTP like a client would: one server for the suite (ONE_PROCESS in
// tests/CMakeLists.txt), renders at 16x16, 1 frame, 1 step unless a test asks for more.
#include <algorithm>
#include <filesystem>
#include <set>
#include <thread>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "serve_test_util.h"
#include "video_io/mp4_reader.h"

namespace t2v::test {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

// A render long enough to be caught in progress: about 2 s on 2 cores with the default model.
const json kSlow = {{"size", "64x64"}, {"frames", 17}, {"steps", 20}};

class ServeApi : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new TempDir();
    // A short read timeout, so the slow-client test sees silent connections dropped.
    server_ = new ServeProcess(dir_->file("jobs"), {"--read-timeout", "2"});
  }
  static void TearDownTestSuite() {
    if (server_) {
      EXPECT_EQ(server_->stop(SIGTERM), 0) << server_->child().err();
    }
    delete server_;
    delete dir_;
  }
  static const ServeProcess& s() { return *server_; }
  static std::string jobs() { return dir_->file("jobs"); }

  static TempDir* dir_;
  static ServeProcess* server_;
};
TempDir* ServeApi::dir_ = nullptr;
ServeProcess* ServeApi::server_ = nullptr;

json quick(const std::string& prompt, uint64_t seed = 1) { return {{"prompt", prompt}, {"seed", seed}}; }

void expect_error(const Reply& r, int status, const std::string& param, const std::string& what) {
  EXPECT_EQ(r.status, status) << what << ": " << r.body;
  json j = r.json();
  ASSERT_TRUE(j.is_object() && j.contains("error")) << what << ": " << r.body;
  const json& e = j["error"];
  EXPECT_TRUE(e["message"].is_string() && !e["message"].get<std::string>().empty()) << what;
  EXPECT_TRUE(e["type"].is_string()) << what;
  EXPECT_TRUE(e.contains("code")) << what;
  if (param.empty()) {
    EXPECT_TRUE(e["param"].is_null()) << what << ": " << r.body;
  } else {
    EXPECT_EQ(e["param"], param) << what << ": " << r.body;
  }
  EXPECT_EQ(r.header("Content-Type"), "application/json") << what;
}

TEST_F(ServeApi, SubmitPollDownloadGivesGeneratesFrames) {
  const json req = {
      {"prompt", "a red ball rolling to the left"}, {"size", "32x32"}, {"frames", 5}, {"steps", 3}, {"seed", 42}};
  json v = submit(s(), req);
  ASSERT_TRUE(v.is_object());
  EXPECT_EQ(v["object"], "video");
  EXPECT_EQ(v["status"], "queued");
  EXPECT_EQ(v["progress"], 0);
  EXPECT_EQ(v["size"], "32x32");
  EXPECT_EQ(v["seed"], 42);
  EXPECT_TRUE(v["created_at"].is_number_integer());
  EXPECT_TRUE(v["completed_at"].is_null());
  EXPECT_TRUE(v["error"].is_null());
  const std::string id = v["id"];
  EXPECT_EQ(id.rfind("video_", 0), 0u) << id;
  json done = poll_video(s(), id, "completed");
  EXPECT_EQ(done["progress"], 100);
  EXPECT_TRUE(done["completed_at"].is_number_integer());
  EXPECT_EQ(done["frames"], 5);
  EXPECT_EQ(done["seconds"], "0.625");  // 5 frames at the model's 8 fps

  Reply mp4 = http_get(s(), "/v1/videos/" + id + "/content");
  ASSERT_EQ(mp4.status, 200);
  EXPECT_EQ(mp4.header("Content-Type"), "video/mp4");
  EXPECT_EQ(mp4.header("Accept-Ranges"), "bytes");
  TempDir tmp;
  write_text(tmp.file("served.mp4"), mp4.body);
  EXPECT_EQ(read_text(jobs() + "/" + id + "/video.mp4"), mp4.body);

  // The same settings through `t2v generate`: the same frames.
  RunResult g = run_t2v({"generate", "--model", test_model_dir(), "-p", req["prompt"], "--size", "32x32", "--frames",
                         "5", "--steps", "3", "--seed", "42", "-o", tmp.file("generated.mp4"), "-q"});
  ASSERT_EQ(g.code, 0) << g.err;
  std::vector<std::vector<uint8_t>> a = mp4_frames(tmp.file("served.mp4")), b = mp4_frames(tmp.file("generated.mp4"));
  ASSERT_EQ(a.size(), 5u);
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) EXPECT_TRUE(a[i] == b[i]) << "frame " << i << " differs from generate's";

  for (const char* variant : {"thumbnail", "spritesheet"}) {
    Reply png = http_get(s(), "/v1/videos/" + id + "/content?variant=" + variant);
    EXPECT_EQ(png.status, 200) << variant;
    EXPECT_EQ(png.header("Content-Type"), "image/png") << variant;
    EXPECT_EQ(png.body.substr(0, 8), std::string("\x89PNG\r\n\x1a\n", 8)) << variant;
  }
  Reply thumb = http_get(s(), "/v1/videos/" + id + "/content?variant=thumbnail");
  write_text(tmp.file("thumb.png"), thumb.body);
  Mp4Reader r;  // FFmpeg reads PNGs too
  r.open(tmp.file("thumb.png"));
  EXPECT_EQ(r.info().width, 32);
  EXPECT_EQ(r.info().height, 32);
}

TEST_F(ServeApi, ByteRangesFor206And416) {
  const std::string id = submit(s(), quick("a blue cube"))["id"];
  poll_video(s(), id, "completed");
  const std::string whole = http_get(s(), "/v1/videos/" + id + "/content").body;
  const size_t n = whole.size();
  ASSERT_GT(n, 100u);
  Reply r = http_get(s(), "/v1/videos/" + id + "/content", {{"Range", "bytes=10-49"}});
  EXPECT_EQ(r.status, 206);
  EXPECT_EQ(r.header("Content-Range"), "bytes 10-49/" + std::to_string(n));
  EXPECT_EQ(r.body, whole.substr(10, 40));
  r = http_get(s(), "/v1/videos/" + id + "/content", {{"Range", "bytes=-16"}});
  EXPECT_EQ(r.status, 206);
  EXPECT_EQ(r.body, whole.substr(n - 16));
  r = http_get(s(), "/v1/videos/" + id + "/content", {{"Range", "bytes=20-"}});
  EXPECT_EQ(r.status, 206);
  EXPECT_EQ(r.body, whole.substr(20));
  r = http_get(s(), "/v1/videos/" + id + "/content", {{"Range", "bytes=0-" + std::to_string(n + 1000)}});
  EXPECT_EQ(r.status, 206);
  EXPECT_EQ(r.body, whole);
  r = http_get(s(), "/v1/videos/" + id + "/content", {{"Range", "bytes=" + std::to_string(n) + "-"}});
  expect_error(r, 416, "", "range past the end");
  EXPECT_EQ(r.header("Content-Range"), "bytes */" + std::to_string(n));
  expect_error(http_get(s(), "/v1/videos/" + id + "/content", {{"Range", "bytes=9-3"}}), 416, "", "reversed range");
  // A JSON answer is never cut by a Range header.
  r = http_get(s(), "/v1/videos/" + id, {{"Range", "bytes=0-3"}});
  EXPECT_EQ(r.status, 200);
  EXPECT_TRUE(r.json().is_object()) << r.body;
}

TEST_F(ServeApi, ListIsNewestFirstWithCursor) {
  std::vector<std::string> ids;
  for (int i = 0; i < 3; ++i) ids.push_back(submit(s(), quick("a green cone " + std::to_string(i)))["id"]);
  json page = http_get(s(), "/v1/videos?limit=2").json();
  EXPECT_EQ(page["object"], "list");
  ASSERT_EQ(page["data"].size(), 2u) << page.dump();
  EXPECT_EQ(page["data"][0]["id"], ids[2]);
  EXPECT_EQ(page["data"][1]["id"], ids[1]);
  EXPECT_EQ(page["has_more"], true);
  EXPECT_EQ(page["first_id"], ids[2]);
  EXPECT_EQ(page["last_id"], ids[1]);
  json next = http_get(s(), "/v1/videos?limit=1&after=" + ids[1]).json();
  ASSERT_EQ(next["data"].size(), 1u) << next.dump();
  EXPECT_EQ(next["data"][0]["id"], ids[0]);
  json all = http_get(s(), "/v1/videos").json();
  int64_t last = INT64_MAX;
  for (const json& v : all["data"]) {
    EXPECT_LE(v["created_at"].get<int64_t>(), last);
    last = v["created_at"];
  }
  for (const std::string& id : ids) poll_video(s(), id, "completed");
}

TEST_F(ServeApi, DeleteCancelsTheRunningJobAndRemovesItsFiles) {
  json slow = kSlow;
  slow["prompt"] = "a yellow star growing";
  const std::string id = submit(s(), slow)["id"];
  expect_error(http_get(s(), "/v1/videos/" + id + "/content"), 409, "", "content before completion");
  // Wait until it renders and has shown a preview.
  json v;
  for (int i = 0; i < 400; ++i) {
    v = http_get(s(), "/v1/videos/" + id).json();
    if (v.value("status", "") == "in_progress" && v.value("preview_step", 0) > 0) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ASSERT_EQ(v["status"], "in_progress") << v.dump();
  ASSERT_GT(v["preview_step"].get<int>(), 0) << v.dump();
  Reply preview = http_get(s(), "/v1/videos/" + id + "/preview");
  EXPECT_EQ(preview.status, 200);
  EXPECT_EQ(preview.header("Content-Type"), "image/png");
  EXPECT_EQ(preview.body.substr(0, 4), "\x89PNG");

  Reply del = http_delete(s(), "/v1/videos/" + id);
  ASSERT_EQ(del.status, 200) << del.body;
  EXPECT_EQ(del.json(), (json{{"id", id}, {"object", "video.deleted"}, {"deleted", true}}));
  expect_error(http_get(s(), "/v1/videos/" + id), 404, "video_id", "GET after DELETE");
  expect_error(http_get(s(), "/v1/videos/" + id + "/content"), 404, "video_id", "content after DELETE");
  expect_error(http_delete(s(), "/v1/videos/" + id), 404, "video_id", "second DELETE");
  EXPECT_FALSE(fs::exists(jobs() + "/" + id));
  // The worker stopped it at a step and goes on with the next job.
  const std::string next = submit(s(), quick("a purple ring"))["id"];
  poll_video(s(), next, "completed");
  auto counts = journal_counts(jobs());
  EXPECT_EQ((counts[{id, "deleted"}]), 1);
  EXPECT_EQ((counts[{id, "done"}]), 0);
  EXPECT_FALSE(fs::exists(jobs() + "/" + id));
}

TEST_F(ServeApi, BadRequestsGetTheRightStatusAndAJsonError) {
  auto post = [&](const std::string& body) { return http_post(s(), "/v1/videos", body); };
  expect_error(post("{\"prompt\": \"a ball\""), 400, "", "malformed JSON");
  expect_error(post("[1, 2]"), 400, "", "not an object");
  expect_error(post(""), 400, "", "empty body");
  expect_error(post(R"({"prompt": 5})"), 400, "prompt", "prompt of the wrong type");
  expect_error(post(R"({"prompt": "a", "steps": "ten"})"), 400, "steps", "steps as text");
  expect_error(post(R"({"prompt": "a", "steps": 2.5})"), 400, "steps", "fractional steps");
  expect_error(post(R"({"prompt": "a", "cfg": true})"), 400, "cfg", "boolean cfg");
  expect_error(post(R"({"prompt": "a", "seed": -1})"), 400, "seed", "negative seed");
  expect_error(post(R"({"size": "32x32"})"), 400, "prompt", "no prompt");
  expect_error(post(R"({"prompt": ""})"), 400, "prompt", "empty prompt");
  expect_error(post(R"({"prompt": "  \t\n  "})"), 400, "prompt", "whitespace prompt");
  expect_error(post(R"({"prompt": "a", "size": "100x100"})"), 400, "size", "size not a multiple of 16");
  expect_error(post(R"({"prompt": "a", "size": "0x0"})"), 400, "size", "zero size");
  expect_error(post(R"({"prompt": "a", "size": "16384x16384"})"), 400, "size", "impossibly large size");
  expect_error(post(R"({"prompt": "a", "size": "big"})"), 400, "size", "size that is no size");
  expect_error(post(R"({"prompt": "a", "frames": 6})"), 400, "frames", "frames not 4k+1");
  expect_error(post(R"({"prompt": "a", "steps": 0})"), 400, "steps", "zero steps");
  expect_error(post(R"({"prompt": "a", "sampler": "ddim"})"), 400, "sampler", "unknown sampler");
  expect_error(post(R"({"prompt": "a", "seconds": "-2"})"), 400, "seconds", "negative seconds");
  expect_error(post(R"({"prompt": "a", "seconds": "4", "frames": 17})"), 400, "seconds", "seconds and frames");
  expect_error(post(R"({"prompt": "a", "model": "sora-2"})"), 400, "model", "another model");
  expect_error(post(R"({"prompt": "a", "image": "x.png"})"), 400, "image", "unknown field");
  expect_error(post(R"({"prompt": "a", "loras": []})"), 400, "loras", "unknown field");
  // A size fine alone but too many tokens with these frames: no single field to blame.
  expect_error(post(R"({"prompt": "a", "size": "2048x2048", "frames": 101})"), 400, "", "size x frames");
  // Bodies over 1 MB: declared, and sent chunked without a length.
  const std::string big = "{\"prompt\": \"" + std::string(3 << 20, 'a') + "\"}";
  expect_error(post(big), 413, "", "3 MB body");
  std::string chunked = raw_request(s().port(),
                                    "POST /v1/videos HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                                    "Transfer-Encoding: chunked\r\n\r\n" +
                                        fmt::format("{:x}\r\n{}\r\n0\r\n\r\n", big.size(), big));
  EXPECT_EQ(chunked.rfind("HTTP/1.1 413", 0), 0u) << chunked.substr(0, 200);
  EXPECT_NE(chunked.find("payload_too_large"), std::string::npos) << chunked.substr(0, 400);
  // Ids: unknown, path tricks, slashes.
  expect_error(http_get(s(), "/v1/videos/video_0000"), 404, "video_id", "unknown id");
  expect_error(http_get(s(), "/v1/videos/.."), 404, "video_id", "id ..");
  expect_error(http_get(s(), "/v1/videos/..%2F..%2Fetc%2Fpasswd"), 404, "", "id with encoded slashes");
  expect_error(http_delete(s(), "/v1/videos/video_%2E%2E"), 404, "video_id", "id with encoded dots");
  for (const char* target : {"/v1/videos/../../etc/passwd", "/v1/videos/video_x/../../../etc/passwd/content",
                             "/v1/videos/%2e%2e/content", "/v1/videos//content"}) {
    std::string r =
        raw_request(s().port(), fmt::format("GET {} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", target));
    EXPECT_EQ(r.rfind("HTTP/1.1 404", 0), 0u) << target << ": " << r.substr(0, 200);
    EXPECT_EQ(r.find("root:"), std::string::npos) << target;
  }
  expect_error(http_get(s(), "/v1/videos?limit=0"), 400, "limit", "limit 0");
  expect_error(http_get(s(), "/v1/videos?limit=abc"), 400, "limit", "limit abc");
  expect_error(http_get(s(), "/v1/videos?after=video_nope"), 400, "after", "unknown cursor");
  const std::string id = submit(s(), quick("a red ball"))["id"];
  expect_error(http_get(s(), "/v1/videos/" + id + "/content?variant=gif"), 400, "variant", "unknown variant");
  poll_video(s(), id, "completed");
  expect_error(http_get(s(), "/v1/nothing"), 404, "", "unknown endpoint");
  // Garbage on the wire is answered, and the server goes on serving.
  EXPECT_EQ(raw_request(s().port(), "\x01\x02 nonsense\r\n\r\n").rfind("HTTP/1.1 400", 0), 0u);
  EXPECT_EQ(http_get(s(), "/health").status, 200);
}

TEST_F(ServeApi, SlowClientsDoNotBlockOthers) {
  // Connections that never finish their request, fewer than the server's threads.
  std::vector<std::unique_ptr<RawConnection>> slow;
  for (int i = 0; i < 4; ++i)
    slow.push_back(std::make_unique<RawConnection>(
        s().port(),
        i % 2 ? "POST /v1/videos HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{\"pro" : "GET /v1/vid"));
  const auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < 20; ++i) ASSERT_EQ(http_get(s(), "/v1/videos?limit=1").status, 200);
  const std::string id = submit(s(), quick("an orange pyramid"))["id"];
  poll_video(s(), id, "completed");
  EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(), 5.0);
  // The server gives up on each once it has been silent for --read-timeout (2 s here): the
  // unfinished request line is dropped at once, the unfinished body answered 400 and its
  // connection closed after the 5 s keep-alive wait.
  for (size_t i = 0; i < slow.size(); ++i) EXPECT_TRUE(slow[i]->wait_closed(10)) << "slow connection " << i;
  EXPECT_EQ(http_get(s(), "/health").status, 200);
}

TEST_F(ServeApi, KeptAliveConnectionsAnswerWithoutDelay) {
  // Without TCP_NODELAY the body of each answer waits for the client's delayed ACK (~40 ms on
  // Linux): measured 44 ms a GET before, 0.3 ms after.
  httplib::Client c = s().client();
  c.set_keep_alive(true);
  std::vector<double> ms;
  for (int i = 0; i < 21; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    httplib::Result r = c.Get("/v1/videos?limit=1");
    ASSERT_TRUE(r && r->status == 200);
    ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
  }
  std::sort(ms.begin(), ms.end());
  EXPECT_LT(ms[10], 20.0) << "median of 21 GETs on one connection, ms";
}

TEST_F(ServeApi, MultipartFormAndSecondsAreAccepted) {
  // The OpenAI client sends multipart forms: text fields, numbers as text.
  const std::string boundary = "t2v-form-boundary";
  std::string form;
  for (auto [name, value] : std::vector<std::pair<std::string, std::string>>{
           {"prompt", "a white sphere"}, {"size", "32x32"}, {"seconds", "1"}, {"steps", "2"}, {"seed", "5"}})
    form += fmt::format("--{}\r\nContent-Disposition: form-data; name=\"{}\"\r\n\r\n{}\r\n", boundary, name, value);
  form += "--" + boundary + "--\r\n";
  Reply r = http_post(s(), "/v1/videos", form, {}, "multipart/form-data; boundary=" + boundary);
  ASSERT_EQ(r.status, 200) << r.body;
  json v = r.json();
  EXPECT_EQ(v["prompt"], "a white sphere");
  EXPECT_EQ(v["size"], "32x32");
  EXPECT_EQ(v["frames"], 9);  // 1 s at the model's 8 fps, as 4k+1: 9 frames
  EXPECT_EQ(v["seconds"], "1.125");
  EXPECT_EQ(v["steps"], 2);
  EXPECT_EQ(v["seed"], 5);
  EXPECT_EQ(http_delete(s(), "/v1/videos/" + v["id"].get<std::string>()).status, 200);
  // "seconds" as a JSON number, as the OpenAI API's string, and rounded to the nearest 4k+1.
  for (auto [seconds, frames] : std::vector<std::pair<json, int>>{{json(1), 9}, {json("2"), 17}, {json(0.3), 1}}) {
    json body = quick("a white sphere");
    body["seconds"] = seconds;
    json w = submit(s(), body);
    EXPECT_EQ(w["frames"], frames) << seconds.dump();
    EXPECT_EQ(http_delete(s(), "/v1/videos/" + w.value("id", "")).status, 200);
  }
  // A file part is refused naming its field; a bad field is named as in JSON.
  std::string with_file = fmt::format(
      "--{0}\r\nContent-Disposition: form-data; name=\"prompt\"\r\n\r\na cat\r\n"
      "--{0}\r\nContent-Disposition: form-data; name=\"input_reference\"; filename=\"a.png\"\r\n"
      "Content-Type: image/png\r\n\r\nPNG\r\n--{0}--\r\n",
      boundary);
  expect_error(http_post(s(), "/v1/videos", with_file, {}, "multipart/form-data; boundary=" + boundary), 400,
               "input_reference", "file part");
  std::string bad_steps = fmt::format(
      "--{0}\r\nContent-Disposition: form-data; name=\"prompt\"\r\n\r\na cat\r\n"
      "--{0}\r\nContent-Disposition: form-data; name=\"steps\"\r\n\r\nten\r\n--{0}--\r\n",
      boundary);
  expect_error(http_post(s(), "/v1/videos", bad_steps, {}, "multipart/form-data; boundary=" + boundary), 400, "steps",
               "steps as text in a form");
}

TEST_F(ServeApi, TwentyConcurrentSubmissionsEachRenderOnce) {
  std::vector<std::string> ids(20);
  std::vector<std::thread> threads;
  for (int i = 0; i < 20; ++i)
    threads.emplace_back([&, i] { ids[i] = submit(s(), quick("a red ball " + std::to_string(i), i)).value("id", ""); });
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(std::set<std::string>(ids.begin(), ids.end()).size(), 20u);
  for (const std::string& id : ids) {
    json v = poll_video(s(), id, "completed", 120);
    EXPECT_TRUE(fs::exists(jobs() + "/" + id + "/video.mp4")) << id;
  }
  auto counts = journal_counts(jobs());
  for (const std::string& id : ids) {
    EXPECT_EQ((counts[{id, "submitted"}]), 1) << id;
    EXPECT_EQ((counts[{id, "started"}]), 1) << id;
    EXPECT_EQ((counts[{id, "done"}]), 1) << id;
  }
}

}  // namespace
}  // namespace t2v::test
