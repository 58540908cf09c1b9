// How a task's text is wrapped into the model's chat turn, cut into the three pieces RULER needs
// (Star Attention's ruler/data/prepare.py splits its template so): text before the user's message,
// between the user's message and the assistant's answer, and between an assistant answer and the
// next user message (cwe's worked example is a whole earlier turn). A RULER sample is then
//   context = prefix + task instruction + haystack          (phase 1)
//   query   = question + suffix + answer prefix             (phase 2; the model continues it)
#pragma once

#include <string>

#include "tokenizer/chat.h"

namespace starattn::eval {

struct PromptFormat {
  std::string prefix;    // e.g. "<|im_start|>system\n...<|im_end|>\n<|im_start|>user\n"
  std::string suffix;    // e.g. "<|im_end|>\n<|im_start|>assistant\n"
  std::string turn_end;  // e.g. "<|im_end|>\n<|im_start|>user\n"

  // Cut out of the chat template's own rendering; an empty system keeps the template's default.
  static PromptFormat from_chat(const ChatTemplate& tmpl, const std::string& system);
  // Star Attention's 'llama3' prompt (ruler/data/template.py): Llama-3 turns, system "You are a
  // helpful assistant.". The golden strings in tests/eval_test.cpp are written against it.
  static PromptFormat sa_llama3();
  // No template (base models): the task text alone, as RULER's 'base' template.
  static PromptFormat base();
};

}  // namespace starattn::eval
