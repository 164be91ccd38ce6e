"""Answers in Django REST framework's shapes, as Provet Cloud gives them."""

from django.http import JsonResponse


def detail(status: int, text: str, **headers: str) -> JsonResponse:
    response = JsonResponse({"detail": text}, status=status)
    for name, value in headers.items():
        response[name.replace("_", "-")] = value
    return response


def not_found() -> JsonResponse:
    return detail(404, "Not found.")


def method_not_allowed(method: str, allowed: set[str] | frozenset[str]) -> JsonResponse:
    response = detail(405, f'Method "{method}" not allowed.')
    response["Allow"] = ", ".join(sorted(allowed | {"OPTIONS"}))
    return response


def field_errors(errors: dict) -> JsonResponse:
    return JsonResponse(errors, status=400)
