"""A second baseline: the least a durable intake can do (one INSERT and COMMIT over async psycopg),
so the benchmark shows what the database alone costs on this machine."""

import asyncio
import json
import os
from contextlib import asynccontextmanager

import psycopg
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

connections: asyncio.Queue = asyncio.Queue()


@asynccontextmanager
async def lifespan(_: FastAPI):
    for _ in range(16):
        await connections.put(await psycopg.AsyncConnection.connect(os.environ["FLOOR_DATABASE_URL"]))
    connection = await connections.get()
    await connection.execute("CREATE TABLE IF NOT EXISTS floor_case (id bigserial PRIMARY KEY, body jsonb)")
    await connection.commit()
    await connections.put(connection)
    yield


app = FastAPI(lifespan=lifespan)


@app.post("/floor")
async def floor(request: Request) -> JSONResponse:
    body = await request.json()
    connection = await connections.get()
    try:
        cursor = await connection.execute("INSERT INTO floor_case (body) VALUES (%s) RETURNING id", [json.dumps(body)])
        (new_id,) = await cursor.fetchone()
        await connection.commit()
    finally:
        await connections.put(connection)
    return JSONResponse({"id": new_id}, status_code=201)
