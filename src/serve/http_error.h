// An error that becomes an HTTP status and an OpenAI-style body:
//   {"error": {"message": ..., "type": ..., "param": ..., "code": ...}}
#pragma once

#include <stdexcept>
#include <string>

namespace starattn::serve {

class HttpError : public std::runtime_error {
 public:
  HttpError(int status, std::string type, const std::string& message, std::string param = "",
            std::string code = "")
      : std::runtime_error(message),
        status(status),
        type(std::move(type)),
        param(std::move(param)),
        code(std::move(code)) {}
  int status;
  std::string type;   // "invalid_request_error", "authentication_error", "not_found_error", ...
  std::string param;  // the request field at fault, or ""
  std::string code;   // a machine-readable code, or ""
};

inline HttpError bad_request(const std::string& message, const std::string& param = "") {
  return HttpError(400, "invalid_request_error", message, param);
}

}  // namespace starattn::serve
