// `t2v serve`: the body of POST /v1/videos turned into a job's complete, validated settings,
// with the same field readers as batch lists (app/json_fields.h) and the same validation as
// `t2v generate` (validate_generate_options), and errors in the OpenAI error shape.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "app/options.h"

namespace t2v {

// An HTTP error answer: {"error": {"message", "type", "param", "code"}} with `status`.
struct ApiError {
  int status = 400;
  std::string code;          // e.g. "invalid_value", "unknown_parameter", "video_not_found"
  std::string message;       // one line: what is wrong and, where it helps, how to fix it
  std::string param;         // the request field at fault, "" for none (JSON null)
  std::string type() const;  // "invalid_request_error", "authentication_error", ...
  nlohmann::json body() const;
};

// What a job renders. `options` holds the server's model, device and defaults with the
// request's fields applied; `seed` is the request's or a random one (stored, so a job that
// runs again after a restart makes the same video).
struct JobSettings {
  GenerateOptions options;
  uint64_t seed = 0;
};

// The request fields (OpenAI's prompt, model, size, seconds and the t2v extensions).
const std::vector<std::string>& video_request_fields();

// Frames for a duration at `fps`: the nearest 4k+1 to seconds * fps (ties round up), at least 1.
int frames_for_seconds(double seconds, double fps);

// Parses a request body. `defaults` passed validate_generate_options; `model_name` is the name
// the served model answers to. Throws ApiError (400) naming the field. Fills `warnings`
// (e.g. stripped bidi characters).
JobSettings parse_video_request(const nlohmann::json& body, const GenerateOptions& defaults,
                                const std::string& model_name, std::vector<std::string>* warnings);

// A multipart/form-data body's fields as the JSON object parse_video_request reads: numeric
// fields whose text parses as a JSON number become numbers.
nlohmann::json form_fields_json(const std::vector<std::pair<std::string, std::string>>& fields);

// The settings as stored in a job's request.json (the batch manifest's settings object) and
// back. Reading throws Error(65) naming the key when a stored file does not hold them.
nlohmann::json job_settings_json(const JobSettings& s, const std::string& model_name);
JobSettings job_settings_from_json(const nlohmann::json& j, const GenerateOptions& defaults);

}  // namespace t2v
