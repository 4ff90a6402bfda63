"""Django settings for the fan-out baseline: no database, no apps beyond Channels."""

SECRET_KEY = "bench-only-not-secret"
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
INSTALLED_APPS = ["channels"]
ASGI_APPLICATION = "django_fanout.asgi.application"
DATABASES: dict = {}
USE_TZ = True
# The earlier design's channel layer, with its defaults (capacity 100 per channel, expiry 60 s).
CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
LOGGING = {"version": 1, "disable_existing_loggers": False}
