// Chat prompts without a Jinja engine: the chat templates of the supported models are recognised
// by their markers and rendered by hand, byte for byte what transformers' apply_chat_template
// renders (tests/chat_test.cpp compares with goldens from tools/make_tokenizer_fixtures.py).
#pragma once

#include <string>
#include <vector>

namespace starattn {

enum class ChatFormat {
  ChatML,  // <|im_start|>role\ncontent<|im_end|>\n  (SmolLM2, Qwen2)
  Llama3,  // Meta-Llama-3-Instruct: <|start_header_id|>role<|end_header_id|>\n\ncontent<|eot_id|>
};

struct ChatMessage {
  std::string role, content;
};

// What a recognised template renders beyond its format.
struct ChatTemplate {
  ChatFormat format = ChatFormat::ChatML;
  // ChatML: system prompt the template inserts when the first message is not "system" (SmolLM2:
  // "You are a helpful AI assistant named SmolLM, trained by Hugging Face"); "" for none.
  std::string default_system;
};

// Throws Error for an empty template or one that is neither of the supported formats (including
// the Llama-3.1+ templates, whose system header carries dates and tool definitions).
ChatTemplate parse_chat_template(const std::string& template_string);
inline ChatFormat detect_chat_format(const std::string& template_string) {
  return parse_chat_template(template_string).format;
}

// Renders the conversation; add_generation_prompt appends the assistant header. The Llama-3
// rendering starts with <|begin_of_text|> (the template writes bos_token itself), so do not add
// BOS again when tokenizing it. Throws Error for an empty conversation, as transformers does.
std::string render_chat(const ChatTemplate& tmpl, const std::vector<ChatMessage>& msgs,
                        bool add_generation_prompt);
inline std::string render_chat(ChatFormat format, const std::vector<ChatMessage>& msgs,
                               bool add_generation_prompt) {
  return render_chat(ChatTemplate{format, ""}, msgs, add_generation_prompt);
}

}  // namespace starattn
