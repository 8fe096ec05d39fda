"""Prompt templates for ``rephrase``: the built-in styles and custom templates.

The styles follow the descriptions in three papers (the wording here is ours):

* WRAP (Maini et al., 2024, "Rephrasing the Web"): ``easy`` (so a young child understands),
  ``wikipedia`` (the "medium" style: high-quality prose like Wikipedia), ``hard`` (terse,
  scholarly language) and ``qa`` (a conversation of questions and answers);
* Nemotron-CC (Su et al., 2024): ``diverse_qa`` (questions of several kinds with answers),
  ``distill`` (a concise, clear rewrite keeping the useful content), ``extract_knowledge``
  (the knowledge rewritten as textbook-like passages, noise left out) and ``knowledge_list``
  (the key facts as a list);
* REWIRE (Nguyen et al., 2025, "Recycling the Web"): ``guided_rewrite`` (work out what the
  document is for, then write a better document for that purpose, keeping its information).

A template is a system message and a user message. In the user message, ``{text}`` is
replaced by the chunk and ``{language}`` by the language's English name (placeholders are
replaced literally: other braces are left alone). For a document not in English, a template
without ``{language}`` gets :data:`LANGUAGE_INSTRUCTION` appended, so the model answers in the
document's language.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

TEXT = "{text}"
LANGUAGE = "{language}"
LANGUAGE_INSTRUCTION = "Write your answer in {language}, the language of the text."
ENGLISH = "en"

_PLAIN = (
    "Reply with the rewritten text only: no title, no introduction such as \"Here is\", no "
    "notes after it."
)


@dataclass(frozen=True)
class PromptTemplate:
    """A system message and a user message with the ``{text}`` placeholder."""

    system: str
    user: str

    @property
    def sha256(self) -> str:
        """The template's identity: recorded in the manifest, each synthetic document and the
        generation cache key."""
        payload = json.dumps({"system": self.system, "user": self.user}, sort_keys=True)
        return hashlib.sha256(payload.encode("utf-8")).hexdigest()

    def messages(self, text: str, language: str | None) -> list[dict[str, str]]:
        """The chat messages for one chunk of a document in ``language`` (ISO 639-1 code, or
        ``None`` when unknown: treated as English)."""
        name = language_name(language or ENGLISH)
        user = self.user.replace(TEXT, text)
        if LANGUAGE in self.user:
            user = user.replace(LANGUAGE, name)
        elif language and language != ENGLISH:
            user = user.rstrip() + "\n\n" + LANGUAGE_INSTRUCTION.replace(LANGUAGE, name)
        messages = [{"role": "system", "content": self.system}] if self.system else []
        return messages + [{"role": "user", "content": user}]


STYLES: dict[str, PromptTemplate] = {
    # -- WRAP ------------------------------------------------------------------------------
    "easy": PromptTemplate(
        system="You are a patient teacher who explains things to young children.",
        user=(
            "Rewrite the text below so that a small child could follow it. Use short sentences "
            "and everyday words, and keep every fact it states.\n\n" + _PLAIN + "\n\nText:\n{text}"
        ),
    ),
    "wikipedia": PromptTemplate(
        system="You are an encyclopedia editor who writes clear, neutral, well-formed prose.",
        user=(
            "Rewrite the text below in the style of a Wikipedia article: complete sentences, a "
            "neutral and factual tone, correct grammar. Keep all of its information and do not "
            "add facts it does not state.\n\n" + _PLAIN + "\n\nText:\n{text}"
        ),
    ),
    "hard": PromptTemplate(
        system="You are a scholar who writes dense academic prose.",
        user=(
            "Rewrite the text below in terse, sophisticated language, as a scholarly paper "
            "would put it, using precise technical vocabulary. Keep all of its information.\n\n"
            + _PLAIN + "\n\nText:\n{text}"
        ),
    ),
    "qa": PromptTemplate(
        system="You turn documents into instructive conversations.",
        user=(
            "Turn the text below into a conversation of questions and answers. Every answer "
            "must come from the text. Write each pair as \"Question: ...\" on one line and "
            "\"Answer: ...\" on the next.\n\n" + _PLAIN + "\n\nText:\n{text}"
        ),
    ),
    # -- Nemotron-CC -----------------------------------------------------------------------
    "diverse_qa": PromptTemplate(
        system="You write study questions about documents.",
        user=(
            "Read the text below and write several questions about it with their answers. Mix "
            "the kinds of questions: yes/no questions, open questions, multiple-choice questions "
            "(give the options), comparisons and questions that need reasoning over several "
            "facts. Answers must be supported by the text. Write each pair as \"Question: ...\" "
            "and \"Answer: ...\".\n\n" + _PLAIN + "\n\nText:\n{text}"
        ),
    ),
    "distill": PromptTemplate(
        system="You are an editor who makes writing concise and clear.",
        user=(
            "Rewrite the text below so it is concise and easy to read while keeping all of its "
            "useful information. Leave out repetition, filler and anything that is not "
            "content.\n\n" + _PLAIN + "\n\nText:\n{text}"
        ),
    ),
    "extract_knowledge": PromptTemplate(
        system="You write textbook passages.",
        user=(
            "Take the knowledge in the text below and rewrite it as passages of a textbook or "
            "an encyclopedia. Leave out what carries no knowledge (navigation, advertisements, "
            "greetings, personal asides). Do not add facts the text does not state.\n\n"
            + _PLAIN + "\n\nText:\n{text}"
        ),
    ),
    "knowledge_list": PromptTemplate(
        system="You summarise documents as lists of facts.",
        user=(
            "List the key facts, figures and ideas of the text below, one per line, each line "
            "starting with \"- \". Every item must come from the text.\n\n"
            "Reply with the list only.\n\nText:\n{text}"
        ),
    ),
    # -- REWIRE ----------------------------------------------------------------------------
    "guided_rewrite": PromptTemplate(
        system="You improve low-quality web documents into useful, well-written ones.",
        user=(
            "The text below is a web document of low quality. Work out what it is about and "
            "what a reader would want from it. Then write a better document with the same "
            "purpose and information: well organised, clearly written, correct, with missing "
            "steps or explanations filled in where they follow from the text. Do not mention "
            "the original document.\n\n" + _PLAIN + "\n\nText:\n{text}"
        ),
    ),
}

DEFAULT_SYSTEM = "You are a helpful assistant that rewrites documents."

# English names of the languages a model is most likely asked to write (ISO 639-1); a code
# not listed is given to the model as it is.
_LANGUAGE_NAMES = {
    "ar": "Arabic", "bg": "Bulgarian", "bn": "Bengali", "ca": "Catalan", "cs": "Czech",
    "da": "Danish", "de": "German", "el": "Greek", "en": "English", "es": "Spanish",
    "et": "Estonian", "eu": "Basque", "fa": "Persian", "fi": "Finnish", "fr": "French",
    "ga": "Irish", "gl": "Galician", "he": "Hebrew", "hi": "Hindi", "hr": "Croatian",
    "hu": "Hungarian", "id": "Indonesian", "it": "Italian", "ja": "Japanese", "ko": "Korean",
    "lt": "Lithuanian", "lv": "Latvian", "ms": "Malay", "nl": "Dutch", "no": "Norwegian",
    "pl": "Polish", "pt": "Portuguese", "ro": "Romanian", "ru": "Russian", "sk": "Slovak",
    "sl": "Slovenian", "sr": "Serbian", "sv": "Swedish", "sw": "Swahili", "ta": "Tamil",
    "th": "Thai", "tr": "Turkish", "uk": "Ukrainian", "ur": "Urdu", "vi": "Vietnamese",
    "zh": "Chinese",
}


def language_name(code: str) -> str:
    base = code.split("_")[0].split("-")[0].lower()
    return _LANGUAGE_NAMES.get(base, code)


class TemplateError(ValueError):
    """A custom template cannot be used."""


def custom_template(user: str, system: str | None, where: str) -> PromptTemplate:
    """A template from a recipe's inline text or file (``where`` names it in errors)."""
    if TEXT not in user:
        raise TemplateError(
            f"the prompt template {where} has no {TEXT} placeholder: put {TEXT} where the "
            "document's text goes"
        )
    return PromptTemplate(system=DEFAULT_SYSTEM if system is None else system, user=user)
