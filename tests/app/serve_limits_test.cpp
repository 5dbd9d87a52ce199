// `t2v serve`: API keys, the queue limit, the model-loading window, and startup errors.
#include <filesystem>

#include <gtest/gtest.h>

#include "serve_test_util.h"

namespace t2v::test {
namespace {

using nlohmann::json;

void expect_json_error(const Reply& r, int status, const std::string& code) {
  EXPECT_EQ(r.status, status) << r.body;
  json j = r.json();
  ASSERT_TRUE(j.is_object() && j.contains("error")) << r.body;
  EXPECT_EQ(j["error"]["code"], code) << r.body;
}

TEST(ServeAuth, BearerKeyOnTheApiOnly) {
  TempDir dir;
  ServeProcess s(dir.file("jobs"), {"--api-key", "s3cret-key"});
  expect_json_error(http_get(s, "/v1/videos"), 401, "invalid_api_key");
  EXPECT_EQ(http_get(s, "/v1/videos").json()["error"]["type"], "authentication_error");
  expect_json_error(http_get(s, "/v1/videos", {{"Authorization", "Bearer s3cret-kez"}}), 401, "invalid_api_key");
  expect_json_error(http_get(s, "/v1/videos", {{"Authorization", "Bearer s3cret-key-longer"}}), 401, "invalid_api_key");
  expect_json_error(http_get(s, "/v1/videos", {{"Authorization", "s3cret-key"}}), 401, "invalid_api_key");
  expect_json_error(http_post(s, "/v1/videos", R"({"prompt": "a red ball"})"), 401, "invalid_api_key");
  const httplib::Headers key = {{"Authorization", "Bearer s3cret-key"}};
  EXPECT_EQ(http_get(s, "/v1/videos", key).status, 200);
  const std::string id = submit(s, {{"prompt", "a red ball"}}, key)["id"];
  poll_video(s, id, "completed", 60, key);
  expect_json_error(http_get(s, "/v1/videos/" + id + "/content"), 401, "invalid_api_key");
  EXPECT_EQ(http_get(s, "/v1/videos/" + id + "/content", key).status, 200);
  // The page and the health check carry no data and need no key.
  Reply page = http_get(s, "/");
  EXPECT_EQ(page.status, 200);
  EXPECT_NE(page.body.find("<form"), std::string::npos);
  EXPECT_EQ(http_get(s, "/health").status, 200);
  EXPECT_EQ(s.stop(), 0);
}

TEST(ServeAuth, KeyFromTheEnvironment) {
  TempDir dir;
  ServeProcess s(dir.file("jobs"), {}, {{"T2V_API_KEY", "from-env"}});
  expect_json_error(http_get(s, "/v1/videos"), 401, "invalid_api_key");
  EXPECT_EQ(http_get(s, "/v1/videos", {{"Authorization", "Bearer from-env"}}).status, 200);
  EXPECT_EQ(s.stop(), 0);
}

TEST(ServeQueue, FullQueueIs429) {
  TempDir dir;
  ServeProcess s(dir.file("jobs"), {"--max-queue", "2", "--size", "64x64", "--frames", "17", "--steps", "20"});
  std::vector<Reply> replies;
  for (int i = 0; i < 4; ++i)
    replies.push_back(http_post(s, "/v1/videos", json{{"prompt", "a red ball " + std::to_string(i)}}.dump()));
  // At most one renders, at most two wait: the fourth cannot fit.
  EXPECT_EQ(replies[0].status, 200);
  EXPECT_EQ(replies[1].status, 200);
  expect_json_error(replies[3], 429, "queue_full");
  EXPECT_EQ(replies[3].json()["error"]["type"], "rate_limit_error");
  EXPECT_FALSE(replies[3].header("Retry-After").empty());
  for (const Reply& r : replies)
    if (r.status == 200) http_delete(s, "/v1/videos/" + r.json()["id"].get<std::string>());
  EXPECT_EQ(s.stop(), 0);
}

TEST(ServeLoading, SubmissionsAre503UntilTheModelHasLoaded) {
  TempDir dir;
  const std::string gate = dir.file("gate");
  ServeProcess s(dir.file("jobs"), {}, {{"T2V_SERVE_LOAD_GATE", gate}}, /*wait_ready=*/false);
  Reply r = http_post(s, "/v1/videos", R"({"prompt": "a red ball"})");
  expect_json_error(r, 503, "model_loading");
  EXPECT_EQ(r.json()["error"]["type"], "server_error");
  EXPECT_FALSE(r.header("Retry-After").empty());
  EXPECT_EQ(http_get(s, "/health").status, 503);
  EXPECT_EQ(http_get(s, "/v1/videos").status, 200);  // reading works while loading
  write_text(gate, "");
  ASSERT_TRUE(s.wait_ready(60)) << s.child().err();
  const std::string id = submit(s, {{"prompt", "a red ball"}})["id"];
  poll_video(s, id, "completed");
  EXPECT_EQ(s.stop(), 0);
}

TEST(ServeLoading, SigtermWhileLoadingExits0) {
  TempDir dir;
  ServeProcess s(dir.file("jobs"), {}, {{"T2V_SERVE_LOAD_GATE", dir.file("never")}}, /*wait_ready=*/false);
  EXPECT_EQ(s.stop(SIGTERM), 0) << s.child().err();
}

TEST(ServeStartup, BadOptionsAndMissingModelExitAtOnce) {
  TempDir dir;
  RunResult r = run_t2v(serve_args(dir.file("jobs"), {"--port", "70000"}));
  EXPECT_EQ(r.code, 64) << r.err;
  r = run_t2v(serve_args(dir.file("jobs"), {"--steps", "0"}));
  EXPECT_EQ(r.code, 64) << r.err;
  r = run_t2v(serve_args(dir.file("jobs"), {"--model", dir.file("no-such-model")}));
  EXPECT_EQ(r.code, 66) << r.err;
  write_text(dir.file("file"), "");
  r = run_t2v(serve_args(dir.file("file"), {}));
  EXPECT_EQ(r.code, 73) << r.err;
  EXPECT_FALSE(std::filesystem::exists(dir.file("jobs")));
}

}  // namespace
}  // namespace t2v::test
