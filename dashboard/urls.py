"""The browser side's addresses: board list, board page, board JSON and the health check."""

from django.urls import path

from dashboard import views

urlpatterns = [
    path("", views.board_list, name="board_list"),
    path("boards/<slug:slug>/", views.board_page, name="board"),
    path("api/boards/<slug:slug>/", views.board_api, name="board_api"),
    path("healthz", views.healthz, name="healthz"),
]
