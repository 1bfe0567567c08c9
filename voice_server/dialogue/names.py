"""The name a person said for a recipient the contacts do not hold ("send 500 to Wanjiru"), so the assistant
can say which name it did not find instead of only asking again. Pure: it reads the intent parser's own
vocabulary (the words it knows are not names) and nothing else."""

from __future__ import annotations

from intents.numbers import is_number_word
from intents.tokens import tokenize_words
from intents.vocabulary import vocabulary

MAX_NAME_WORDS = 3


def unknown_name(text: str) -> str | None:
    """The words after "to"/"kwa" that the vocabulary does not know ("Wanjiru"), capitalised; None when the
    utterance names nobody that way."""
    vocab = vocabulary()
    tokens = tokenize_words(text[:500])
    for i, token in enumerate(tokens):
        if vocab.roles_of_word.get(token) != "to":
            continue
        words: list[str] = []
        for word in tokens[i + 1 :]:
            if not word.isalpha() or word in vocab.roles_of_word or is_number_word(vocab.numbers, word):
                break
            words.append(word)
            if len(words) == MAX_NAME_WORDS:
                break
        if words:
            return " ".join(w.capitalize() for w in words)
    return None
