"""The baseline: a bare FastAPI app that answers a JSON POST with the same JSON."""

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

app = FastAPI()


@app.post("/echo")
async def echo(request: Request) -> JSONResponse:
    return JSONResponse(await request.json(), status_code=201)


@app.get("/hello")
async def hello() -> JSONResponse:
    return JSONResponse({"hello": "world"})
