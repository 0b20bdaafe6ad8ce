from django.apps import AppConfig


class ReviewsConfig(AppConfig):
    name = "oversight.reviews"
    label = "reviews"
