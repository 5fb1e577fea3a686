from django.apps import AppConfig


class MongoAdminConfig(AppConfig):
    name = "operations.mongo_admin"
    label = "mongo_admin"

    def ready(self):
        from django.contrib import admin

        from operations.mongo_admin.views import urls

        original = admin.site.get_urls

        def get_urls():
            return urls(admin.site) + original()

        admin.site.get_urls = get_urls

        from operations.mongo_admin.job_actions import install

        install()
