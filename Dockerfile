# The zun-gateway image. Build: docker build -t <registry>/zun-gateway:<version> .  (not built or published by this
# repository's CI: there is no registry here). The Helm chart (charts/zun-gateway) mounts the configuration at
# /etc/zun-gateway/gateway.yaml and runs the image as UID 10001 with a read-only root filesystem.

# --- build: compile TypeScript to dist/ ---------------------------------------------------------------------------
FROM node:20-bookworm AS build
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json ./
COPY scripts/build-ui.mjs ./scripts/
COPY src ./src
# tsconfig also includes test/ and bench/; only src/ is copied, so only the gateway (and its page, src/ui) is built.
RUN npm run build

# --- runtime: production dependencies and the compiled gateway only ----------------------------------------------
FROM node:20-bookworm-slim
ENV NODE_ENV=production
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund && npm cache clean --force
COPY --from=build /src/dist/src ./dist/src
# Not root; numeric, so Kubernetes' runAsNonRoot can verify it.
RUN groupadd --system --gid 10001 zun-gateway && useradd --system --uid 10001 --gid 10001 --no-create-home zun-gateway
USER 10001:10001
EXPOSE 8443 9090
ENTRYPOINT ["node", "dist/src/main.js", "serve", "--config", "/etc/zun-gateway/gateway.yaml"]
