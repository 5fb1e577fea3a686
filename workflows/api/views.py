"""Thin workflows API: validate input, call one service or selector, serialize the result."""

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.ratelimit import rate_limit
from layra.openapi import errors, event_stream, moved_to_trash
from layra.pagination import PAGE_PARAMETERS, page_response, paginated
from layra.sse import EventStreamRenderer, sse_event, sse_response
from workflows import selectors, services


class WorkflowOutputSerializer(serializers.Serializer):
    workflow_id = serializers.CharField()
    workflow_name = serializers.CharField()
    nodes = serializers.ListField(child=serializers.DictField())
    edges = serializers.ListField(child=serializers.DictField())
    start_node = serializers.CharField()
    global_variables = serializers.DictField()
    workflow_config = serializers.DictField()
    version = serializers.IntegerField()
    created_at = serializers.DateTimeField()
    last_modify_at = serializers.DateTimeField()


class WorkflowExportSerializer(serializers.Serializer):
    format = serializers.CharField(required=False)
    workflow_name = serializers.CharField(max_length=200)
    nodes = serializers.ListField(child=serializers.DictField())
    edges = serializers.ListField(child=serializers.DictField(), required=False, default=list)
    start_node = serializers.CharField(required=False, allow_blank=True, default="")
    global_variables = serializers.DictField(required=False, default=dict)
    workflow_config = serializers.DictField(required=False, default=dict)


class RunOutputSerializer(serializers.Serializer):
    run_id = serializers.CharField()
    workflow_id = serializers.CharField()
    status = serializers.CharField()
    current_node = serializers.CharField(allow_null=True)
    completed_nodes = serializers.ListField(child=serializers.CharField())
    variables = serializers.DictField()
    outputs = serializers.DictField()
    error = serializers.DictField(allow_null=True)
    pending_input = serializers.DictField(allow_null=True)
    breakpoints = serializers.ListField(child=serializers.CharField())
    steps = serializers.IntegerField()
    created_at = serializers.DateTimeField()
    started_at = serializers.DateTimeField(allow_null=True)
    finished_at = serializers.DateTimeField(allow_null=True)


class WorkflowListCreateApi(APIView):
    class WorkflowListCreateInputSerializer(WorkflowExportSerializer):
        pass

    @extend_schema(summary="List your workflows", parameters=PAGE_PARAMETERS,
                   responses={200: paginated(WorkflowOutputSerializer)})
    def get(self, request):
        return page_response(request=request, view=self, items=selectors.workflow_list(user=request.user),
                             serializer=WorkflowOutputSerializer, to_item=selectors.workflow_to_dict)

    @extend_schema(summary="Create a workflow", request=WorkflowListCreateInputSerializer,
                   responses={201: WorkflowOutputSerializer})
    def post(self, request):
        ser = self.WorkflowListCreateInputSerializer(data=request.data)
        ser.is_valid(raise_exception=True)
        data = {k: v for k, v in ser.validated_data.items() if k != "format"}
        wf = services.workflow_create(user=request.user, **data)
        return Response(WorkflowOutputSerializer(selectors.workflow_to_dict(wf)).data, status=status.HTTP_201_CREATED)


class WorkflowDetailApi(APIView):
    class WorkflowDetailInputSerializer(serializers.Serializer):
        version = serializers.IntegerField(help_text="The version you loaded; a stale version answers 409.")
        workflow_name = serializers.CharField(max_length=200, required=False)
        nodes = serializers.ListField(child=serializers.DictField(), required=False)
        edges = serializers.ListField(child=serializers.DictField(), required=False)
        start_node = serializers.CharField(required=False, allow_blank=True)
        global_variables = serializers.DictField(required=False)
        workflow_config = serializers.DictField(required=False)

    @extend_schema(summary="One workflow", responses={200: WorkflowOutputSerializer})
    def get(self, request, workflow_id: str):
        wf = selectors.workflow_get(user=request.user, workflow_id=workflow_id)
        return Response(WorkflowOutputSerializer(selectors.workflow_to_dict(wf)).data)

    @extend_schema(summary="Save a workflow (optimistic: a stale version is a 409)",
                   request=WorkflowDetailInputSerializer, responses={200: WorkflowOutputSerializer, **errors(409)})
    def put(self, request, workflow_id: str):
        ser = self.WorkflowDetailInputSerializer(data=request.data)
        ser.is_valid(raise_exception=True)
        wf = services.workflow_update(user=request.user, workflow_id=workflow_id, **ser.validated_data)
        return Response(WorkflowOutputSerializer(selectors.workflow_to_dict(wf)).data)

    @extend_schema(summary="Move a workflow to the trash with its chatflows", responses=moved_to_trash(),
                   description="Hidden at once with its chatflows; purged (runs included) by DELETE "
                               "trash/workflow/{id}/ or the nightly cleanup after TRASH_RETENTION_DAYS; "
                               "POST trash/workflow/{id}/restore/ brings it back with its chatflows.")
    def delete(self, request, workflow_id: str):
        services.workflow_delete(user=request.user, workflow_id=workflow_id)
        return Response(status=status.HTTP_204_NO_CONTENT)


class WorkflowDuplicateApi(APIView):
    class WorkflowDuplicateInputSerializer(serializers.Serializer):
        workflow_name = serializers.CharField(max_length=200, required=False)

    @extend_schema(summary="Duplicate a workflow", request=WorkflowDuplicateInputSerializer,
                   responses={201: WorkflowOutputSerializer})
    def post(self, request, workflow_id: str):
        ser = self.WorkflowDuplicateInputSerializer(data=request.data)
        ser.is_valid(raise_exception=True)
        wf = services.workflow_duplicate(user=request.user, workflow_id=workflow_id, **ser.validated_data)
        return Response(WorkflowOutputSerializer(selectors.workflow_to_dict(wf)).data, status=status.HTTP_201_CREATED)


class WorkflowExportApi(APIView):
    @extend_schema(summary="Export a workflow as portable JSON", responses={200: WorkflowExportSerializer})
    def get(self, request, workflow_id: str):
        return Response(selectors.workflow_export(user=request.user, workflow_id=workflow_id))


class WorkflowImportApi(APIView):
    @extend_schema(summary="Import a workflow from its exported JSON", request=WorkflowExportSerializer,
                   responses={201: WorkflowOutputSerializer})
    def post(self, request):
        ser = WorkflowExportSerializer(data=request.data)
        ser.is_valid(raise_exception=True)
        wf = services.workflow_import(user=request.user, data=ser.validated_data)
        return Response(WorkflowOutputSerializer(selectors.workflow_to_dict(wf)).data, status=status.HTTP_201_CREATED)


class RunListCreateApi(APIView):
    class RunListCreateInputSerializer(serializers.Serializer):
        inputs = serializers.DictField(required=False, default=dict)
        breakpoints = serializers.ListField(child=serializers.CharField(), required=False, default=list)

    @extend_schema(summary="List a workflow's latest runs (at most 100)", parameters=PAGE_PARAMETERS,
                   responses={200: paginated(RunOutputSerializer)})
    def get(self, request, workflow_id: str):
        return page_response(request=request, view=self, serializer=RunOutputSerializer, to_item=selectors.run_to_dict,
                             items=selectors.run_list(user=request.user, workflow_id=workflow_id))

    @extend_schema(summary="Start a run of a workflow", request=RunListCreateInputSerializer,
                   responses={202: RunOutputSerializer})
    def post(self, request, workflow_id: str):
        rate_limit(request=request, scope="workflow_run")
        ser = self.RunListCreateInputSerializer(data=request.data)
        ser.is_valid(raise_exception=True)
        run = services.run_start(user=request.user, workflow_id=workflow_id, **ser.validated_data)
        return Response(RunOutputSerializer(selectors.run_to_dict(run)).data, status=status.HTTP_202_ACCEPTED)


class RunDetailApi(APIView):
    @extend_schema(summary="One run and its state", responses={200: RunOutputSerializer})
    def get(self, request, run_id: str):
        run = selectors.run_get(user=request.user, run_id=run_id)
        return Response(RunOutputSerializer(selectors.run_to_dict(run)).data)


class RunEventsApi(APIView):
    renderer_classes = [JSONRenderer, EventStreamRenderer]

    @extend_schema(
        parameters=[OpenApiParameter("from", int, description="Index of the first event (or Last-Event-ID + 1).")],
        summary="Stream a run's events (server-sent events)",
        responses={(200, "text/event-stream"): event_stream(
            ["run_started", "node_started", "node_output", "node_finished", "node_error", "run_paused",
             "run_waiting_input", "run_finished"], "The event's JSON.")},
        description="Server-sent events (`text/event-stream`), each with its index as `id` (resume with "
                    "Last-Event-ID or `from`). Event types: `run_started`, `node_started`, `node_output`, "
                    "`node_finished`, `node_error`, `run_paused`, `run_waiting_input`, `run_finished`; data is the "
                    "event's JSON. The stream ends at run_finished or a pause.")
    def get(self, request, run_id: str):
        selectors.run_get(user=request.user, run_id=run_id)  # 404 before the stream opens
        last = request.headers.get("Last-Event-ID")
        try:
            start = int(last) + 1 if last is not None else int(request.query_params.get("from", 0))
        except ValueError:
            start = 0
        events = selectors.run_events(user=request.user, run_id=run_id, start=max(0, start))
        return sse_response(sse_event(name, data, event_id=str(index)) for index, name, data in events)


class RunInputApi(APIView):
    class RunInputInputSerializer(serializers.Serializer):
        action = serializers.ChoiceField(choices=["continue", "answer"])
        value = serializers.JSONField(required=False, allow_null=True)

    @extend_schema(summary="Resume a paused run or answer its input request", request=RunInputInputSerializer,
                   responses={200: RunOutputSerializer, **errors(409)})
    def post(self, request, run_id: str):
        ser = self.RunInputInputSerializer(data=request.data)
        ser.is_valid(raise_exception=True)
        run = services.run_input(user=request.user, run_id=run_id, **ser.validated_data)
        return Response(RunOutputSerializer(selectors.run_to_dict(run)).data)


class RunCancelApi(APIView):
    @extend_schema(summary="Cancel a run", request=None, responses={200: RunOutputSerializer, **errors(409)})
    def post(self, request, run_id: str):
        run = services.run_cancel(user=request.user, run_id=run_id)
        return Response(RunOutputSerializer(selectors.run_to_dict(run)).data)


class CustomNodeSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=100)
    type = serializers.CharField()
    data = serializers.DictField(required=False, default=dict)


class CustomNodeListCreateApi(APIView):
    @extend_schema(summary="List your saved custom nodes", parameters=PAGE_PARAMETERS,
                   responses={200: paginated(CustomNodeSerializer)})
    def get(self, request):
        nodes = selectors.custom_nodes_get(user=request.user)
        items = [{"name": name, **config} for name, config in sorted(nodes.items())]
        return page_response(request=request, view=self, items=items, serializer=CustomNodeSerializer)

    @extend_schema(summary="Save a custom node (by name)", request=CustomNodeSerializer,
                   responses={201: CustomNodeSerializer})
    def post(self, request):
        ser = CustomNodeSerializer(data=request.data)
        ser.is_valid(raise_exception=True)
        d = ser.validated_data
        config = services.custom_node_save(user=request.user, name=d["name"], node_type=d["type"], data=d["data"])
        return Response(CustomNodeSerializer({"name": d["name"].strip(), **config}).data,
                        status=status.HTTP_201_CREATED)


class CustomNodeDetailApi(APIView):
    @extend_schema(summary="Delete a custom node", responses={204: None})
    def delete(self, request, name: str):
        services.custom_node_delete(user=request.user, name=name)
        return Response(status=status.HTTP_204_NO_CONTENT)


class TurnSerializer(serializers.Serializer):
    message_id = serializers.CharField()
    user_message = serializers.CharField()
    reply = serializers.CharField(allow_blank=True)
    run_id = serializers.CharField()
    status = serializers.CharField()
    error = serializers.CharField(allow_null=True)
    created_at = serializers.DateTimeField()


class ChatflowOutputSerializer(serializers.Serializer):
    chatflow_id = serializers.CharField()
    workflow_id = serializers.CharField()
    chatflow_name = serializers.CharField(allow_blank=True)
    created_at = serializers.DateTimeField()
    last_modify_at = serializers.DateTimeField()
    turns = TurnSerializer(many=True, required=False)


class ChatflowListCreateApi(APIView):
    class ChatflowListCreateInputSerializer(serializers.Serializer):
        workflow_id = serializers.CharField()
        chatflow_name = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")

    @extend_schema(summary="List your chatflows (without their turns)",
                   parameters=[OpenApiParameter("workflow_id", str, required=False), *PAGE_PARAMETERS],
                   responses={200: paginated(ChatflowOutputSerializer)})
    def get(self, request):
        items = selectors.chatflow_list(user=request.user, workflow_id=request.query_params.get("workflow_id"))
        return page_response(request=request, view=self, items=items, serializer=ChatflowOutputSerializer,
                             to_item=lambda chatflow: selectors.chatflow_to_dict(chatflow, with_turns=False))

    @extend_schema(summary="Create a chatflow: a conversation with a workflow",
                   request=ChatflowListCreateInputSerializer, responses={201: ChatflowOutputSerializer})
    def post(self, request):
        ser = self.ChatflowListCreateInputSerializer(data=request.data)
        ser.is_valid(raise_exception=True)
        cf = services.chatflow_create(user=request.user, **ser.validated_data)
        return Response(ChatflowOutputSerializer(selectors.chatflow_to_dict(cf)).data, status=status.HTTP_201_CREATED)


class ChatflowDetailApi(APIView):
    @extend_schema(summary="One chatflow with its turns", responses={200: ChatflowOutputSerializer})
    def get(self, request, chatflow_id: str):
        cf = selectors.chatflow_get(user=request.user, chatflow_id=chatflow_id)
        return Response(ChatflowOutputSerializer(selectors.chatflow_to_dict(cf)).data)

    @extend_schema(summary="Delete a chatflow", responses={204: None})
    def delete(self, request, chatflow_id: str):
        services.chatflow_delete(user=request.user, chatflow_id=chatflow_id)
        return Response(status=status.HTTP_204_NO_CONTENT)


class ChatflowMessageApi(APIView):
    class ChatflowMessageInputSerializer(serializers.Serializer):
        message = serializers.CharField(max_length=50_000)

    class ChatflowPendingSerializer(serializers.Serializer):
        run_id = serializers.CharField()
        status = serializers.CharField()

    @extend_schema(summary="Send a message to a chatflow (answered now, or followed by its run)",
                   request=ChatflowMessageInputSerializer,
                   responses={201: TurnSerializer, 202: ChatflowPendingSerializer},
                   description="201 with the turn when the run answers within CHATFLOW_REPLY_TIMEOUT_S; else 202 with "
                               "the run to follow (runs/{run_id}/events); the turn is recorded when the run ends.")
    def post(self, request, chatflow_id: str):
        rate_limit(request=request, scope="chatflow_message")
        ser = self.ChatflowMessageInputSerializer(data=request.data)
        ser.is_valid(raise_exception=True)
        reply = services.chatflow_message(user=request.user, chatflow_id=chatflow_id, **ser.validated_data)
        if reply.turn is None:
            return Response(self.ChatflowPendingSerializer(reply).data, status=status.HTTP_202_ACCEPTED)
        return Response(TurnSerializer(reply.turn).data, status=status.HTTP_201_CREATED)
