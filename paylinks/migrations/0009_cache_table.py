from django.conf import settings
from django.core.management.commands.createcachetable import Command as CreateCacheTable
from django.db import migrations


def create_cache_table(apps, schema_editor):
    """The table behind the shared cache when there is no Redis (config/settings.py CACHES).

    Made here, so that `migrate` is the one set-up step, whichever cache is configured now."""
    command = CreateCacheTable()
    command.verbosity = 0
    command.create_table(schema_editor.connection.alias, settings.CACHE_TABLE, dry_run=False)


def drop_cache_table(apps, schema_editor):
    schema_editor.execute(
        f"DROP TABLE IF EXISTS {schema_editor.quote_name(settings.CACHE_TABLE)}"
    )


class Migration(migrations.Migration):
    dependencies = [("paylinks", "0008_one_live_replacement")]

    operations = [migrations.RunPython(create_cache_table, drop_cache_table)]
