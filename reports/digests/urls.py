from django.urls import path

import dashboard.ids  # noqa: F401  (registers the <pk:...> path converter)
from reports.digests import views

app_name = "digests"

urlpatterns = [
    path("", views.subscriptions, name="list"),
    path("add/", views.add, name="add"),
    path("<pk:pk>/", views.edit, name="edit"),
    path("<pk:pk>/delete/", views.delete, name="delete"),
    path("preview/", views.preview, name="preview"),
    path("unsubscribe/<str:token>/", views.unsubscribe, name="unsubscribe"),
]
