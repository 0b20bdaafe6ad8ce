"""Websocket routes. The live feeds (approvals, actions, kill-switch banners) mount here."""

from __future__ import annotations

from django.urls import URLPattern

websocket_urlpatterns: list[URLPattern] = []
