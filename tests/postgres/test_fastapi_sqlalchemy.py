"""The README's FastAPI + SQLAlchemy example, run as written: an endpoint adds an order
and enqueues its receipt in one ``AsyncSession`` transaction (``session.begin()``), with
``app.enqueue_many([...], connection=session)`` or the typed
``task.options(connection=session).enqueue(...)``. A commit stores both; a rollback
neither."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, HTTPException
from pydantic import BaseModel
from sqlalchemy import String, func, select
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from workhorse import Workhorse
from workhorse.backends.base import JobFilter
from workhorse.backends.postgres import PostgresBackend

pytestmark = pytest.mark.postgres


class OrderIn(BaseModel):
    """The request body."""

    email: str
    typed: bool = False
    fail: bool = False


@pytest.fixture
async def engine(store_url: str) -> AsyncIterator[AsyncEngine]:
    """The application's own engine, on the psycopg 3 driver."""
    url = store_url.split("?")[0].replace("postgresql://", "postgresql+psycopg://", 1)
    engine = create_async_engine(url)
    try:
        yield engine
    finally:
        await engine.dispose()


async def test_orders_and_their_receipts_commit_or_roll_back_together(
    pg: PostgresBackend, store_url: str, engine: AsyncEngine
) -> None:
    class Base(DeclarativeBase):
        pass

    class Order(Base):
        __tablename__ = "orders"
        __table_args__ = {"schema": pg.schema}
        id: Mapped[int] = mapped_column(primary_key=True)
        email: Mapped[str] = mapped_column(String(200))

    async with engine.begin() as conn:
        await conn.run_sync(Base.metadata.create_all)

    app = Workhorse(store_url)

    @app.task(name="orders.send_receipt")
    async def send_receipt(email: str) -> None:
        return None

    Session = async_sessionmaker(engine)
    api = FastAPI()

    @api.post("/orders")
    async def create_order(order: OrderIn) -> dict[str, Any]:
        async with Session() as session, session.begin():
            session.add(Order(email=order.email))
            if order.typed:
                job = await send_receipt.options(connection=session).enqueue(order.email)
            else:
                (job,) = await app.enqueue_many(
                    [send_receipt.call(order.email)], connection=session
                )
            if order.fail:
                raise HTTPException(409, "out of stock")
        return {"job": job.id}

    transport = httpx.ASGITransport(app=api)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            for email, typed, fail in [
                ("a@x.io", False, False),
                ("b@x.io", False, True),
                ("c@x.io", True, False),
                ("d@x.io", True, True),
            ]:
                response = await client.post(
                    "/orders", json={"email": email, "typed": typed, "fail": fail}
                )
                assert response.status_code == (409 if fail else 200), response.text
    finally:
        await app.aclose()

    async with Session() as session:
        orders = set((await session.scalars(select(Order.email))).all())
        assert await session.scalar(select(func.count()).select_from(Order)) == 2
    jobs = await pg.job_list(filter=JobFilter(task="orders.send_receipt"))
    assert orders == {"a@x.io", "c@x.io"}
    assert sorted(job.args[0] for job in jobs) == ["a@x.io", "c@x.io"]
