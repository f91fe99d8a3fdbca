"""Errors a client caused, with the `extensions.code` frontends branch on."""

from __future__ import annotations

from graphql import GraphQLError


class BadUserInput(GraphQLError):
    def __init__(self, message: str) -> None:
        super().__init__(message, extensions={"code": "BAD_USER_INPUT"})
