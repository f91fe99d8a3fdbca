"""graphql-core's executor, with compiled plans for queries and plain leaves read in place.

A query with a plan (`schema.plans`) runs the way graphql-core runs it: the same resolvers
are called in the same order, their values awaited the same way (one alone, several
gathered, the others cancelled when one fails), and an error is located, nulls its nearest
nullable field and is collected just as graphql-core does it. Answers, errors and their
order, and the batches that loaders make, are graphql-core's. What a plan saves is the work
graphql-core repeats for every object: which fields apply, a resolve info and converted
arguments for every field, the generic completion of every value.

A value that a plan does not expect (a null where the type forbids one, a value of the
wrong type or class, a leaf that cannot be read) is a mistake of ours, never a client's:
the plan is abandoned, and graphql-core runs the operation again, from fresh loaders, to
answer it the standard way. A query reads, so running it twice changes nothing but the time.
Each time is told to `plan_abandoned` (`observed` passes it on, to the app's metrics).

Operations without a plan still read plain leaves in place: a leaf whose Strawberry field
has no resolver costs graphql-core about ten calls (a path, a resolve info, Strawberry's
wrapper, completion) for one `getattr`.
"""

from __future__ import annotations

import inspect
from collections import OrderedDict
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, runtime_checkable

from graphql import ExecutionResult, GraphQLError, GraphQLObjectType, Undefined, located_error
from graphql.execution.values import get_argument_values
from graphql.pyutils import Path, gather_with_cancel
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext
from strawberry.types.arguments import convert_arguments

from schema.plans import compile_query, leaf_output, plain_leaf, read_leaf

if TYPE_CHECKING:
    from collections.abc import (
        Awaitable,
        Callable,
        Iterable,
        Mapping,
        MutableMapping,
        MutableSequence,
    )

    from graphql.execution.collect_fields import GroupedFieldSet
    from graphql.pyutils import AwaitableOrValue
    from strawberry import Schema

    from schema.plans import FieldPlan, ObjectPlan, Output, PlainLeaf

PLANS = 512  # operations whose plan (or lack of one) is kept


class Unexpected(Exception):
    """A value a plan does not answer itself: graphql-core will."""


@runtime_checkable
class FreshLoaders(Protocol):
    """A context whose loaders can start afresh (`resolvers.context.Context`)."""

    def fresh_loaders(self) -> object: ...


def _discard(awaitables: Iterable[Any]) -> None:
    """Close coroutines no one will await, with the unstarted ones they hold (a field's
    completion holds its resolver's coroutine, an object's the awaitables of its fields).
    A future is left alone: it may be shared (a loader keeps it for its key) and settles on
    its own."""
    for awaitable in awaitables:
        if not isinstance(awaitable, Coroutine):
            continue
        held: list[Any] = []
        if inspect.getcoroutinestate(awaitable) == inspect.CORO_CREATED:
            for argument in inspect.getcoroutinelocals(awaitable).values():
                if isinstance(argument, dict):
                    held.extend(argument.values())
                elif isinstance(argument, list):
                    held.extend(argument)
                else:
                    held.append(argument)
        awaitable.close()
        _discard(held)


async def _settle(results: MutableMapping[str, Any] | MutableSequence[Any], keys: list[Any]) -> Any:
    """The awaitables at `keys` replaced by their values as graphql-core awaits them: one in
    place, several gathered, the others cancelled as soon as one fails."""
    if len(keys) == 1:
        key = keys[0]
        results[key] = await results[key]
        return results
    values = await gather_with_cancel(*(results[key] for key in keys))
    for key, value in zip(keys, values, strict=True):
        results[key] = value
    return results


class Execution(StrawberryGraphQLCoreExecutionContext):
    # Shared by every request: a schema's types never change, nor do cached documents.
    _plain: ClassVar[dict[tuple[GraphQLObjectType, str], PlainLeaf | None]] = {}
    _plans: ClassVar[OrderedDict[tuple[int, int], tuple[object, object, ObjectPlan | None]]] = (
        OrderedDict()
    )

    def execute_operation(self, serially: bool | None = None) -> AwaitableOrValue[Any]:
        plan = self._plan()
        if (
            plan is None
            or serially
            or self.middleware_manager_in_use
            or self.abort_signal is not None
        ):
            return super().execute_operation(serially)
        return self._execute_plan(plan)

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

    async def _execute_plan(self, plan: ObjectPlan) -> Any:
        self._converted: dict[int, Mapping[str, Any]] = {}
        data: Any
        try:
            result = self._execute_fields(plan, self.root_value, None)
            data = await result if self.is_awaitable(result) else result
        except Unexpected:
            return await self._start_over()
        except GraphQLError as error:  # a non-null field's error nulls the whole answer
            self.collected_errors.add(error, None)
            data = None
        return ExecutionResult(data, self.collected_errors.errors or None)

    def plan_abandoned(self) -> None:
        """Told of each operation whose plan met a value it does not expect; by default
        no one listens."""

    async def _start_over(self) -> Any:
        """graphql-core's answer, as it would be without the abandoned plan: from loaders
        that hold nothing of it, by an executor that collects its own errors."""
        self.plan_abandoned()
        if isinstance(self.context_value, FreshLoaders):
            self.context_value.fresh_loaders()
        executor = self.build_per_event_executor(self.root_value)
        assert isinstance(executor, Execution)  # a copy of this one
        result = super(Execution, executor).execute_operation()
        return await result if self.is_awaitable(result) else result

    # -- graphql-core's execution, over a plan ------------------------------------------

    def _execute_fields(  # noqa: PLR0912 - every field of every object: calls count
        self, plan: ObjectPlan, source: Any, path: Path | None
    ) -> AwaitableOrValue[dict[str, Any]]:
        if plan.origin is not None and not isinstance(source, plan.origin):
            raise Unexpected
        parent = plan.object_type
        results: dict[str, Any] = {}
        awaitable_fields: list[str] = []
        is_awaitable = self.is_awaitable
        try:
            for field in plan.fields:
                key = field.key
                leaf = field.leaf
                if leaf is not None:
                    try:
                        value = getattr(source, leaf.attribute)
                    except Exception as error:
                        raise Unexpected from error
                    if type(value) is not leaf.unchanged:
                        value = leaf_output(leaf, value)
                        if value is Undefined:
                            raise Unexpected
                    results[key] = value
                    continue
                output = field.output
                if output is None:
                    results[key] = parent.name  # __typename
                    continue
                field_path = Path(path, key, parent.name)
                try:  # graphql-core's execute_field
                    result = self._resolve(field, parent, source, field_path)
                    if is_awaitable(result):
                        results[key] = self._complete_awaitable(field, output, result, field_path)
                        awaitable_fields.append(key)
                        continue
                    result = self._complete(field, output, result, field_path)
                    if output.coerce is None and is_awaitable(result):  # a leaf never is
                        results[key] = self._guarded(field, output, result, field_path)
                        awaitable_fields.append(key)
                        continue
                except Unexpected:
                    raise
                except Exception as error:
                    self._field_error(error, field, output, field_path)
                    result = None
                results[key] = result
        except Exception as error:
            self._abandon([results[key] for key in awaitable_fields], error)
            raise
        if not awaitable_fields:
            return results
        return _settle(results, awaitable_fields)

    def _abandon(self, awaitables: list[Any], error: Exception) -> None:
        """Awaitables started before `error`: closed when the plan is abandoned, else settled
        in the background as graphql-core settles them (their errors may still be collected)."""
        if isinstance(error, Unexpected):
            _discard(awaitables)
        elif awaitables:
            self.settle_in_background(awaitables)

    async def _complete_awaitable(
        self, field: FieldPlan, output: Output, result: Awaitable[Any], path: Path
    ) -> Any:
        try:
            resolved = await result
            completed = self._complete(field, output, resolved, path)
            if self.is_awaitable(completed):
                completed = await completed
        except Unexpected:
            raise
        except Exception as error:
            self._field_error(error, field, output, path)
            completed = None
        return completed

    def _guarded(
        self, field: FieldPlan, output: Output, completed: Awaitable[Any], path: Path
    ) -> Awaitable[Any]:
        """`completed`, its error collected here if the type allows a null. Where it does
        not, the error (located already, deeper down) goes on to the parent unchanged, and
        graphql-core's guard would cost a coroutine for nothing."""
        if output.non_null and self.error_propagation:
            return completed
        return self._await_completed(field, output, completed, path)

    async def _await_completed(
        self, field: FieldPlan, output: Output, completed: Awaitable[Any], path: Path
    ) -> Any:
        try:
            return await completed
        except Unexpected:
            raise
        except Exception as error:
            self._field_error(error, field, output, path)
            return None

    def _field_error(self, raw: Exception, field: FieldPlan, output: Output, path: Path) -> None:
        """Located; raised on to the parent when the type forbids a null, else collected."""
        error = located_error(raw, list(field.nodes), path.as_list())
        if self.error_propagation and output.non_null:
            raise error
        self.collected_errors.add(error, path)

    def _complete(self, field: FieldPlan, output: Output, value: Any, path: Path) -> Any:
        if isinstance(value, Exception):
            raise value
        if value is None or value is Undefined:
            if output.non_null:
                raise Unexpected
            return None
        if output.coerce is not None:
            coerced = output.coerce(value)  # a value the scalar refuses raises, located
            if coerced is None or coerced is Undefined:
                raise Unexpected
            return coerced
        if output.item is not None:
            return self._complete_list(field, output.item, value, path)
        assert output.plan is not None
        return self._execute_fields(output.plan, value, path)

    def _complete_list(self, field: FieldPlan, item: Output, values: Any, path: Path) -> Any:
        if not isinstance(values, list | tuple):
            raise Unexpected
        completed: list[Any] = []
        awaitable_indices: list[int] = []
        is_awaitable = self.is_awaitable
        try:
            for index, value in enumerate(values):
                item_path = Path(path, index, None)
                if item.coerce is not None and is_awaitable(value):
                    raise Unexpected  # an object's plan refuses it: it is of another class
                try:
                    result = self._complete(field, item, value, item_path)
                    if is_awaitable(result):
                        completed.append(self._guarded(field, item, result, item_path))
                        awaitable_indices.append(index)
                    else:
                        completed.append(result)
                except Unexpected:
                    raise
                except Exception as error:
                    self._field_error(error, field, item, item_path)
                    completed.append(None)
        except Exception as error:
            self._abandon([completed[index] for index in awaitable_indices], error)
            raise
        if not awaitable_indices:
            return completed
        return _settle(completed, awaitable_indices)

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

    # -- graphql-core's own execution, with plain leaves read in place -------------------

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
        return _settle(results, awaitable_fields)


def observed(on_abandoned: Callable[[], None]) -> type[Execution]:
    """The executor of one schema, which tells `on_abandoned` of each abandoned plan: the
    schema's owner listens without `schema` knowing who (the app counts them in /metrics)."""

    class ObservedExecution(Execution):
        def plan_abandoned(self) -> None:
            on_abandoned()

    return ObservedExecution
