// error_of: the message a call throws, for tests that check what an error says.
#pragma once

#include <gtest/gtest.h>

#include <exception>
#include <string>

#include "starattn/error.h"

namespace starattn::test {

// The message of the starattn::Error that f throws, or "" when f returns normally (so a check on
// the message fails then). Any other exception is a test failure: the library throws only Error.
template <typename F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  } catch (const std::exception& e) {
    ADD_FAILURE() << "threw a non-starattn exception: " << e.what();
    return "";
  }
  return "";
}

}  // namespace starattn::test
