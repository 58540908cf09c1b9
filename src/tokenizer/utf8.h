// UTF-8 and byte-level helpers shared by the tokenizer, the stream decoder and the chat renderer.
// Everything works on raw bytes: input text may be invalid UTF-8 and must survive a round trip.
#pragma once

#include <array>
#include <cstddef>
#include <string>
#include <string_view>

namespace starattn::utf8 {

inline constexpr char32_t kInvalid = 0xFFFFFFFF;

// GPT-2's bytes_to_unicode: byte b -> the printable code point that stands for it in token text.
const std::array<char32_t, 256>& byte_to_codepoint();

// Token text in the byte-level alphabet -> raw bytes. A code point outside the alphabet (possible
// only in added tokens) is kept as its own UTF-8, as the Hugging Face ByteLevel decoder does.
std::string byte_level_decode(std::string_view text);

void append(std::string& out, char32_t cp);

// Decodes the code point at s[i]; sets *cp (kInvalid for a malformed sequence) and returns its
// length in bytes (1 for a malformed byte, so callers always make progress).
size_t next(std::string_view s, size_t i, char32_t* cp);

bool is_valid(std::string_view s);

// Length of a trailing, well-formed-so-far but unfinished sequence (0..3): bytes a streaming
// decoder must hold back because the next token may complete them.
size_t incomplete_tail(std::string_view s);

// Unicode White_Space (Rust's char::is_whitespace, which HF added tokens' lstrip/rstrip use).
bool is_white_space(char32_t cp);
// Python's str.isspace(), which Jinja's `trim` filter (str.strip()) uses in chat templates.
bool is_python_space(char32_t cp);

}  // namespace starattn::utf8
