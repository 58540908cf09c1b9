// Reading a whole input file into memory, safely: only regular files, and only up to a size cap.
// A path given by a user may name /dev/zero (never ends), a FIFO nobody writes to (never starts),
// a directory, or a file far larger than memory; each is refused with an Error that names it,
// before anything large is allocated.
#pragma once

#include <cstdint>
#include <string>

namespace starattn {

// The cap on text inputs read whole: documents (--context-file), prompts (-f), haystacks. Far more
// than any model's context holds (1 GiB is about 250M tokens of English).
constexpr uint64_t kMaxTextFileBytes = uint64_t{1} << 30;
// The cap on small JSON files that describe a model (config.json, the safetensors index): real
// ones are kilobytes, and parsed JSON takes ten times its text or more.
constexpr uint64_t kMaxJsonFileBytes = uint64_t{16} << 20;

// Throws Error naming `what` (e.g. "context file") and the path unless path is a regular file
// (after following links) of at most max_bytes. Opens nothing that could block.
void check_regular_file(const std::string& path, const std::string& what, uint64_t max_bytes);

// The bytes of a regular file of at most max_bytes; the same errors as check_regular_file, and
// a read error or a file that grows past the cap while it is read is an Error too.
std::string read_regular_file(const std::string& path, const std::string& what, uint64_t max_bytes);

}  // namespace starattn
