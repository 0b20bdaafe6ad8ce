"""What every model form shares."""

from __future__ import annotations

from typing import Any

from django import forms
from django.core.exceptions import FieldDoesNotExist
from django.core.validators import MaxValueValidator, MinValueValidator


class ModelBoundsForm(forms.ModelForm):
    """A model form whose number fields take their bounds from the model's own validators
    (a PositiveIntegerField's form field says at least 0, and its HTML `min` is 0, where
    the model wants at least 1): the model's own message for a number out of range (with
    its unit: "Ensure this is at most 31,622,400 seconds."), the same bounds in the
    browser's input."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for name, field in self.fields.items():
            if not isinstance(field, forms.IntegerField | forms.DecimalField):
                continue
            try:
                model_field = self._meta.model._meta.get_field(name)
            except FieldDoesNotExist:  # a form field of its own
                continue
            for kind, attr in ((MinValueValidator, "min"), (MaxValueValidator, "max")):
                found = [v for v in model_field.validators if type(v) is kind]
                if not found:
                    continue
                pick = max if kind is MinValueValidator else min
                tightest = pick(found, key=lambda v: v.limit_value)  # its words: "30 seconds"
                setattr(field, f"{attr}_value", tightest.limit_value)
                field.widget.attrs[attr] = tightest.limit_value
                field.validators = [v for v in field.validators if type(v) is not kind]
                field.validators.append(tightest)
