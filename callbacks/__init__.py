"""Thin adapters: parse inputs, take the actor, call one service, hand the result to a layout."""
