"""Thin Celery tasks over the periodic services (oversight/reviews/periodic.py)."""

from __future__ import annotations

import logging

from celery import shared_task

from oversight.reviews import periodic

logger = logging.getLogger(__name__)


@shared_task(name="oversight.reviews.tasks.reviews_remind")
def reviews_remind() -> dict[str, int]:
    done = periodic.reviews_remind()
    if done:
        logger.info("reviews: %s", dict(done))
    return dict(done)


@shared_task(name="oversight.reviews.tasks.owners_check")
def owners_check() -> dict[str, int]:
    done = periodic.owners_check()
    if done:
        logger.info("ownership: %s", dict(done))
    return dict(done)


@shared_task(name="oversight.reviews.tasks.agents_retire_inactive")
def agents_retire_inactive() -> dict[str, int]:
    done = periodic.agents_retire_inactive()
    if done:
        logger.info("retirement: %s", dict(done))
    return dict(done)
