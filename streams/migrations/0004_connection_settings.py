"""A connection's per-kind fields move into ``settings`` (JSON) and ``encrypted_secrets`` (each value still encrypted).

The fields each kind had are written out here, as they stood, rather than read
from the vendors' settings classes: a migration must mean the same thing
whatever the code becomes. Secrets move as their ciphertext: nothing is
decrypted on the way, in either direction.
"""

import django.db.models.fields.json
import streams.vendors.registry
from django.db import migrations, models

# Kind → its plain columns, and its secrets (setting name → the column holding it encrypted).
KIND_COLUMNS = {
    "genesys": (["region", "base_url", "client_id"], {"client_secret": "client_secret_encrypted"}),
    "cxone": (
        ["base_url", "client_id", "access_key_id", "api_version", "poll_interval"],
        {"client_secret": "client_secret_encrypted", "access_key_secret": "access_key_secret_encrypted"},
    ),
    "push": (
        ["stream_url", "token_url", "client_id", "scope", "field_mapping", "max_frame_bytes"],
        {"client_secret": "client_secret_encrypted"},
    ),
    "sse": (
        ["stream_url", "token_url", "client_id", "scope", "field_mapping", "max_frame_bytes", "keepalive_seconds"],
        {"client_secret": "client_secret_encrypted"},
    ),
    "webhook": (["slug", "field_mapping", "max_frame_bytes"], {"webhook_secret": "webhook_secret_encrypted"}),
}
MOVED = sorted({c for plain, secrets in KIND_COLUMNS.values() for c in [*plain, *secrets.values()]})


def to_settings(apps, schema_editor):
    Connection = apps.get_model("streams", "Connection")
    for connection in Connection.objects.all():
        plain, secrets = KIND_COLUMNS.get(connection.kind, ([], {}))
        connection.settings = {c: getattr(connection, c) for c in plain if getattr(connection, c) is not None}
        connection.encrypted_secrets = {name: getattr(connection, c) for name, c in secrets.items() if getattr(connection, c)}
        connection.save(update_fields=["settings", "encrypted_secrets"])


def to_columns(apps, schema_editor):
    Connection = apps.get_model("streams", "Connection")
    for connection in Connection.objects.all():
        plain, secrets = KIND_COLUMNS.get(connection.kind, ([], {}))
        for column in plain:
            if column in connection.settings:
                setattr(connection, column, connection.settings[column])
        for name, column in secrets.items():
            setattr(connection, column, connection.encrypted_secrets.get(name, ""))
        connection.save(update_fields=[*plain, *secrets.values()])


class Migration(migrations.Migration):

    dependencies = [
        ('streams', '0003_connection_kinds'),
    ]

    operations = [
        migrations.AddField(
            model_name='connection',
            name='encrypted_secrets',
            field=models.JSONField(blank=True, default=dict, editable=False),
        ),
        migrations.AddField(
            model_name='connection',
            name='settings',
            field=models.JSONField(blank=True, default=dict, help_text="The kind's own settings (secrets aside)."),
        ),
        migrations.RunPython(to_settings, to_columns),
        *(migrations.RemoveField(model_name='connection', name=column) for column in MOVED),
        migrations.AlterField(
            model_name='connection',
            name='kind',
            field=models.CharField(choices=streams.vendors.registry.kind_choices, default='genesys', max_length=20),
        ),
        migrations.AddConstraint(
            model_name='connection',
            constraint=models.UniqueConstraint(django.db.models.fields.json.KeyTextTransform('slug', 'settings'), name='unique_connection_slug', violation_error_message='Another connection already uses this slug.'),
        ),
    ]
