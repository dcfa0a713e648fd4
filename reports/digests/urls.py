from django.urls import path

from reports.digests import views

app_name = "digests"

urlpatterns = [
    path("", views.subscriptions, name="list"),
    path("add/", views.add, name="add"),
    path("<int:pk>/", views.edit, name="edit"),
    path("<int:pk>/delete/", views.delete, name="delete"),
    path("preview/", views.preview, name="preview"),
    path("unsubscribe/<str:token>/", views.unsubscribe, name="unsubscribe"),
]
