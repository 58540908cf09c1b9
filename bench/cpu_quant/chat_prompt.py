"""Writes the README's main job as one chat-formatted prompt, the text `starattn generate --chat
--context-file DOC --query Q` tokenises (the document, a blank line, the question, in the model's
own chat template), so that llama.cpp's llama-completion runs the same tokens.
Usage: chat_prompt.py MODEL.gguf DOC QUESTION OUT"""
import sys

import gguf
import jinja2


def main():
    model, doc, question, out = sys.argv[1:5]
    reader = gguf.GGUFReader(model)
    field = reader.fields["tokenizer.chat_template"]
    template = bytes(field.parts[field.data[0]]).decode("utf-8")
    text = open(doc, encoding="utf-8").read()
    env = jinja2.Environment(trim_blocks=True, lstrip_blocks=True)
    prompt = env.from_string(template).render(
        messages=[{"role": "user", "content": text + "\n\n" + question}],
        add_generation_prompt=True, bos_token="", eos_token="")
    open(out, "w", encoding="utf-8").write(prompt)


if __name__ == "__main__":
    main()
