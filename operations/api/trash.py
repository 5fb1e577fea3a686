"""The trash: list the user's deleted items, restore one, purge one now (operations.trash dispatches by kind)."""

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from layra.openapi import errors
from layra.pagination import PAGE_PARAMETERS, page_response, paginated
from operations import trash
from operations.trash import KINDS

_KIND = OpenApiParameter("kind", str, OpenApiParameter.PATH, enum=list(KINDS),
                         description="What the item is: " + ", ".join(f"`{k}`" for k in KINDS) + ".")
_ID = OpenApiParameter("item_id", str, OpenApiParameter.PATH,
                       description="The item's id (knowledge_base_id, file_id, conversation_id or workflow_id).")


class TrashItemOutputSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=list(KINDS))
    id = serializers.CharField()
    name = serializers.CharField()
    deleted_at = serializers.DateTimeField(allow_null=True)
    purge_after = serializers.DateTimeField(allow_null=True,
                                            help_text="When the nightly cleanup purges it (TRASH_RETENTION_DAYS).")
    knowledge_base_id = serializers.CharField(allow_null=True, help_text="A file's knowledge base.")
    replaced_by = serializers.CharField(allow_null=True,
                                        help_text="A file version replaced by a newer one: that file's id.")


class TrashRestoreOutputSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=list(KINDS))
    id = serializers.CharField()


class TrashListApi(APIView):
    @extend_schema(summary="List your trash (deleted items, purged after TRASH_RETENTION_DAYS)",
                   parameters=PAGE_PARAMETERS, responses={200: paginated(TrashItemOutputSerializer)},
                   operation_id="trash_list",
                   description="Knowledge bases, files, conversations and workflows you deleted, most recently "
                               "deleted first. A knowledge base's files, a conversation's temporary knowledge base "
                               "and a workflow's chatflows are in the trash with it and come back with it.")
    def get(self, request):
        return page_response(request=request, view=self, items=trash.trash_list(user=request.user),
                             serializer=TrashItemOutputSerializer)


class TrashRestoreApi(APIView):
    @extend_schema(summary="Restore an item from the trash", request=None, parameters=[_KIND, _ID],
                   responses={200: TrashRestoreOutputSerializer, **errors(409)},
                   description="Brings the item back whole: its pages, vectors and objects were kept. A file "
                               "version becomes its document's current version again (the newer one goes to the "
                               "trash); a file whose knowledge base is in the trash is a 409.")
    def post(self, request, kind: str, item_id: str):
        restored = trash.trash_restore(user=request.user, kind=kind, item_id=item_id)
        return Response(TrashRestoreOutputSerializer(restored).data)


class TrashItemApi(APIView):
    @extend_schema(summary="Purge an item of the trash now", parameters=[_KIND, _ID], responses={204: None},
                   description="Removes it everywhere (vectors, objects, page images, records); it cannot be "
                               "restored afterwards.")
    def delete(self, request, kind: str, item_id: str):
        trash.trash_purge(user=request.user, kind=kind, item_id=item_id)
        return Response(status=status.HTTP_204_NO_CONTENT)
