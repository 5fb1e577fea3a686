from django import forms
from django.contrib import admin, messages
from django.contrib.auth import forms as auth_forms
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin

from accounts import services
from accounts.deletion import account_delete_enqueue, account_delete_request
from accounts.models import AccountDeletion, ApiKey, AuditLog, LoginSession, RefreshToken, User
from accounts.validators import username_problems


class UserCreationForm(auth_forms.AdminUserCreationForm):
    """The admin's add form applies the same username rules as registration."""

    class Meta(auth_forms.AdminUserCreationForm.Meta):
        model = User
        fields = ("username",)

    def clean_username(self):
        username = super().clean_username()
        problems = username_problems(username)
        if problems:
            raise forms.ValidationError(problems)
        return username


class UserChangeForm(auth_forms.UserChangeForm):
    """A renamed user gets the same rules; an older account keeps its name as long as it is not changed."""

    class Meta(auth_forms.UserChangeForm.Meta):
        model = User

    def clean_username(self):
        username = self.cleaned_data["username"]
        if "username" in self.changed_data:
            problems = username_problems(username)
            if problems:
                raise forms.ValidationError(problems)
        return username


class AdminPasswordChangeForm(auth_forms.AdminPasswordChangeForm):
    """A password set by an operator ends every API key and login session of the user, as a change by the user
    ends all but the one that made it."""

    def save(self, commit=True):
        user = super().save(commit)
        if commit:
            revoked = services.credentials_revoke(user=user, reason="password_set_by_admin")
            services.audit_log_record(user=user, action="password.set_by_admin", resource_type="user",
                                      resource_id=user.username, details=revoked)
        return user


@admin.action(description="Delete the selected accounts and all their data (in the background)",
              permissions=["account_delete"])
def delete_accounts(modeladmin, request, queryset):
    users = [u for u in queryset if u.pk != request.user.pk]  # an operator does not delete themself here
    for user in users:
        account_delete_request(user=user, requested_by="admin", actor=request.user)
    modeladmin.message_user(request, f"{len(users)} account(s) deactivated; their data is being deleted (see "
                                     "Account deletions).", messages.SUCCESS)


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    form = UserChangeForm
    add_form = UserCreationForm
    change_password_form = AdminPasswordChangeForm
    list_display = ("username", "email", "is_active", "is_staff", "password_migration_required", "last_login",
                    "created_at")
    list_filter = ("is_active", "is_staff", "is_superuser", "password_migration_required")
    fieldsets = (*DjangoUserAdmin.fieldsets, ("Migration", {"fields": ("password_migration_required",)}))
    actions = [delete_accounts]

    def get_actions(self, request):
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)  # a bare row delete would leave the user's data in every other store
        return actions

    def has_delete_permission(self, request, obj=None):
        return False  # accounts are deleted with their data: the "Delete the selected accounts" action

    def has_account_delete_permission(self, request) -> bool:
        """Who may run the account-deletion action: a view-only operator may not."""
        return request.user.has_perm("accounts.delete_user")


@admin.action(description="Run the selected failed deletions again", permissions=["account_delete"])
def retry_deletions(modeladmin, request, queryset):
    failed = list(queryset.filter(state=AccountDeletion.State.FAILED))
    for deletion in failed:
        AccountDeletion.objects.filter(pk=deletion.pk).update(state=AccountDeletion.State.QUEUED)
        account_delete_enqueue(deletion)
    modeladmin.message_user(request, f"{len(failed)} deletion(s) queued again.", messages.SUCCESS)


@admin.register(AccountDeletion)
class AccountDeletionAdmin(admin.ModelAdmin):
    list_display = ("deletion_id", "user_ref", "requested_by", "state", "attempts", "created_at", "finished_at")
    list_filter = ("state", "requested_by", "created_at")
    search_fields = ("deletion_id", "user_ref")
    readonly_fields = [f.name for f in AccountDeletion._meta.fields]
    actions = [retry_deletions]

    def has_account_delete_permission(self, request) -> bool:
        return request.user.has_perm("accounts.delete_user")

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.action(description="Revoke the selected sessions (their tokens stop working)")
def revoke_sessions(modeladmin, request, queryset):
    revoked = sum(services.session_revoke(session_id=sid, reason="admin")
                  for sid in queryset.filter(revoked_at__isnull=True).values_list("session_id", flat=True))
    for session in queryset.select_related("user"):
        services.audit_log_record(user=request.user, action="session.revoke", resource_type="session",
                                  resource_id=session.session_id, details={"owner": session.user.username})
    modeladmin.message_user(request, f"{revoked} session(s) revoked.", messages.SUCCESS)


@admin.register(LoginSession)
class LoginSessionAdmin(admin.ModelAdmin):
    list_display = ("session_id", "user", "started_at", "last_activity", "ip", "revoked_at", "revoke_reason")
    list_filter = (("revoked_at", admin.EmptyFieldListFilter), "revoke_reason", "started_at")
    search_fields = ("session_id", "user__username", "ip")
    readonly_fields = [f.name for f in LoginSession._meta.fields]
    list_select_related = ("user",)
    actions = [revoke_sessions]

    def has_add_permission(self, request):
        return False


@admin.register(RefreshToken)
class RefreshTokenAdmin(admin.ModelAdmin):
    list_display = ("jti", "user", "family", "created_at", "expires_at", "spent_at", "revoked_at")
    list_filter = (("spent_at", admin.EmptyFieldListFilter), ("revoked_at", admin.EmptyFieldListFilter))
    search_fields = ("jti", "family", "user__username")
    readonly_fields = [f.name for f in RefreshToken._meta.fields]
    list_select_related = ("user",)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    list_display = ("name", "user", "prefix", "created_at", "last_used_at", "expires_at", "revoked_at")
    list_filter = (("revoked_at", admin.EmptyFieldListFilter),)
    search_fields = ("name", "prefix", "user__username", "key_id")
    readonly_fields = ("key_id", "user", "prefix", "created_at", "last_used_at")
    exclude = ("key_hash",)
    list_select_related = ("user",)

    def has_add_permission(self, request):
        return False  # keys are created through the API, where the key is shown once


@admin.register(AuditLog)
class AuditLogAdmin(admin.ModelAdmin):
    list_display = ("timestamp", "username", "action", "resource_type", "resource_id", "ip")
    list_filter = ("action", "resource_type", "timestamp")
    search_fields = ("username", "action", "resource_id", "ip")
    date_hierarchy = "timestamp"
    readonly_fields = [f.name for f in AuditLog._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
