"""The domain's words as template filters: `{% load link_words %}`, then `{{ link|status_words }}`,
`{{ link|delivery_words }}`, `{{ event|event_words }}`, `{{ finding|said }}`. The words
themselves are paylinks/words.py's, which the API, the CSV and the views use too."""

from django import template

from paylinks import words

register = template.Library()

for name in ("status_words", "delivery_words", "event_words", "said"):
    register.filter(name, getattr(words, name))
