"""graphql-core's executor, with compiled plans for queries and plain leaves read in place.

A query with a plan (`schema.plans`) runs level by level: every object of a level is filled
from its plan, the awaitables it leaves (connections loading their rows) are gathered
together, so one batched statement serves a level as before, and their values fill the next
level. Anything unexpected on the way (an error, a null where the type forbids one, a value
of the wrong type) abandons the plan, and graphql-core runs the operation again to answer it
the standard way: a query reads, so running it twice changes nothing but the time it takes.

Operations without a plan still read plain leaves in place: a leaf whose Strawberry field
has no resolver costs graphql-core about ten calls (a path, a resolve info, Strawberry's
wrapper, completion) for one `getattr`.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any, ClassVar

from graphql import ExecutionResult, GraphQLObjectType, Undefined
from graphql.execution.values import get_argument_values
from graphql.pyutils import Path, gather_with_cancel
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext
from strawberry.types.arguments import convert_arguments

from schema.plans import compile_query, leaf_output, plain_leaf, read_leaf

if TYPE_CHECKING:
    from collections.abc import Awaitable, Mapping

    from graphql.execution.collect_fields import GroupedFieldSet
    from graphql.pyutils import AwaitableOrValue
    from strawberry import Schema

    from schema.plans import FieldPlan, ObjectPlan, Output, PlainLeaf

PLANS = 512  # operations whose plan (or lack of one) is kept


class Unexpected(Exception):
    """Something a plan does not answer itself: graphql-core will."""


# Awaitables left by one level: the value, where it goes, how to complete it and its path.
Pending = list[tuple["Awaitable[Any]", dict[str, Any], str, "Output", Path]]


def _discard(awaitable: Awaitable[Any]) -> None:
    """Close a coroutine no one will await. A future is left alone: it may be shared (a
    DataLoader keeps it for its key, for graphql-core's run to find) and settles on its own."""
    if isinstance(awaitable, Coroutine):
        awaitable.close()


class Execution(StrawberryGraphQLCoreExecutionContext):
    # Shared by every request: a schema's types never change, nor do cached documents.
    _plain: ClassVar[dict[tuple[GraphQLObjectType, str], PlainLeaf | None]] = {}
    _plans: ClassVar[OrderedDict[tuple[int, int], tuple[object, object, ObjectPlan | None]]] = (
        OrderedDict()
    )

    def execute_operation(self, serially: bool | None = None) -> AwaitableOrValue[Any]:
        plan = self._plan()
        if plan is None or self.middleware_manager_in_use:
            return super().execute_operation(serially)
        return self._execute_plan(plan, serially)

    @property
    def middleware_manager_in_use(self) -> bool:
        """Middleware sees every field: neither shortcut may skip one."""
        middleware = self.middleware_manager
        return middleware is not None and bool(middleware.middlewares)

    def _plan(self) -> ObjectPlan | None:
        """Cached documents bring the same operation node each time: a plan is kept by it."""
        operation, schema = self.operation, self.schema
        key = (id(schema), id(operation))
        cached = self._plans.get(key)
        if cached is not None and cached[0] is schema and cached[1] is operation:
            self._plans.move_to_end(key)
            return cached[2]
        plan = compile_query(schema, operation, self.fragment_definitions)
        self._plans[key] = (schema, operation, plan)  # both kept: their ids stay their own
        if len(self._plans) > PLANS:
            self._plans.popitem(last=False)
        return plan

    async def _execute_plan(self, plan: ObjectPlan, serially: bool | None) -> Any:
        self._converted: dict[int, Mapping[str, Any]] = {}
        try:
            data = await self._run(plan)
        except Exception:  # answered again, errors and all, the standard way
            result = super().execute_operation(serially)
            return await result if self.is_awaitable(result) else result
        return ExecutionResult(data, None)

    async def _run(self, plan: ObjectPlan) -> dict[str, Any]:
        pending: Pending = []
        try:
            data = self._fill(plan, self.root_value, None, pending)
            while pending:
                level, pending = pending, []
                values = await asyncio.gather(*(item[0] for item in level), return_exceptions=True)
                for (_, target, key, output, path), value in zip(level, values, strict=True):
                    if isinstance(value, BaseException):
                        raise Unexpected from value
                    target[key] = self._complete(output, value, path, pending)
        except BaseException:
            for awaitable, *_ in pending:  # started by this level, never to be awaited
                _discard(awaitable)
            raise
        return data

    def _fill(
        self, plan: ObjectPlan, source: Any, path: Path | None, pending: Pending
    ) -> dict[str, Any]:
        if plan.origin is not None and not isinstance(source, plan.origin):
            raise Unexpected
        parent = plan.object_type
        answer: dict[str, Any] = {}
        for field in plan.fields:
            key = field.key
            leaf = field.leaf
            if leaf is not None:
                value = getattr(source, leaf.attribute)
                if type(value) is not leaf.unchanged:
                    value = leaf_output(leaf, value)
                    if value is Undefined:
                        raise Unexpected
                answer[key] = value
                continue
            if field.output is None:
                answer[key] = parent.name  # __typename
                continue
            field_path = Path(path, key, parent.name)
            value = self._resolve(field, parent, source, field_path)
            if self.is_awaitable(value):
                answer[key] = None  # its place in the answer's order, filled in later
                pending.append((value, answer, key, field.output, field_path))
            else:
                answer[key] = self._complete(field.output, value, field_path, pending)
        return answer

    def _complete(self, output: Output, value: Any, path: Path, pending: Pending) -> Any:
        if value is None:
            if output.non_null:
                raise Unexpected
            return None
        if output.coerce is not None:
            coerced = output.coerce(value)
            if coerced is None or coerced is Undefined:
                raise Unexpected
            return coerced
        if output.item is not None:
            if not isinstance(value, list | tuple):
                raise Unexpected
            item = output.item
            return [
                self._complete(item, each, Path(path, index, None), pending)
                for index, each in enumerate(value)
            ]
        assert output.plan is not None
        return self._fill(output.plan, value, path, pending)

    def _resolve(self, plan: FieldPlan, parent: GraphQLObjectType, source: Any, path: Path) -> Any:
        """What Strawberry's resolver wrapper would pass the resolver, without the wrapper."""
        if plan.call is None:
            return getattr(source, plan.attribute)  # type: ignore[arg-type]
        kwargs: dict[str, Any] = {}
        if plan.arguments:
            converted = self._converted.get(id(plan))
            kwargs.update(self._convert(plan, parent, path) if converted is None else converted)
        if plan.info_name is not None:  # an info costs two objects: only for those who ask
            kwargs[plan.info_name] = self._info(plan, parent, path)
        return plan.call(source, **kwargs) if plan.pass_self else plan.call(**kwargs)

    def _info(self, plan: FieldPlan, parent: GraphQLObjectType, path: Path) -> Any:
        assert plan.definition is not None
        assert plan.field is not None
        raw_info = self.build_resolve_info(plan.definition, list(plan.nodes), parent, path)
        return self._strawberry.config.info_class(_raw_info=raw_info, _field=plan.field)

    def _convert(self, plan: FieldPlan, parent: GraphQLObjectType, path: Path) -> Mapping[str, Any]:
        """The field's Python arguments, converted once per request for every object."""
        assert plan.definition is not None
        assert plan.field is not None
        raw = get_argument_values(plan.definition, plan.nodes[0], self.variable_values)
        converted = self._converted[id(plan)] = convert_arguments(
            raw,
            plan.field.arguments,
            scalar_registry=self._strawberry.schema_converter.scalar_registry,
            config=self._strawberry.config,
            info=self._info(plan, parent, path),
        )
        return converted

    @property
    def _strawberry(self) -> Schema:
        return self.schema._strawberry_schema  # type: ignore[attr-defined, no-any-return]

    def execute_fields(
        self,
        parent_type: GraphQLObjectType,
        source_value: Any,
        path: Path | None,
        grouped_field_set: GroupedFieldSet,
        position_context: Any,
    ) -> AwaitableOrValue[dict[str, Any]]:
        """graphql-core's, with plain leaves read in place."""
        if self.middleware_manager_in_use:
            return super().execute_fields(
                parent_type, source_value, path, grouped_field_set, position_context
            )
        results: dict[str, Any] = {}
        awaitable_fields: list[str] = []
        is_awaitable = self.is_awaitable
        plain = self._plain
        try:
            for response_name, field_details_list in grouped_field_set.items():
                key = (parent_type, field_details_list[0].node.name.value)
                if key in plain:
                    leaf = plain[key]
                else:
                    definition = parent_type.fields.get(key[1])
                    leaf = plain[key] = plain_leaf(definition) if definition else None
                if leaf is not None:
                    value = read_leaf(leaf, source_value)
                    if value is not Undefined:
                        results[response_name] = value
                        continue
                result = self.execute_field(
                    parent_type,
                    source_value,
                    field_details_list,
                    Path(path, response_name, parent_type.name),
                    position_context,
                )
                if result is not Undefined:
                    results[response_name] = result
                    if is_awaitable(result):
                        awaitable_fields.append(response_name)
        except Exception:
            if awaitable_fields:
                self.settle_in_background([results[field] for field in awaitable_fields])
            raise
        if not awaitable_fields:
            return results

        async def get_results() -> dict[str, Any]:
            if len(awaitable_fields) == 1:  # no tasks to gather
                field = awaitable_fields[0]
                results[field] = await results[field]
                return results
            awaited = await gather_with_cancel(*(results[field] for field in awaitable_fields))
            results.update(zip(awaitable_fields, awaited, strict=True))
            return results

        return get_results()
