# The identity provider on Node 24 LTS. Build: docker build -t telephony-idp .
FROM node:24-bookworm-slim
ENV NODE_ENV=production
WORKDIR /app
COPY package.json package-lock.json ./
# argon2 ships a prebuilt Node-API binary that loads on Node 24; no compiler needed.
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force
COPY src ./src
COPY migrations ./migrations
COPY views ./views
COPY public ./public
COPY bin ./bin
COPY tsconfig.json ./
RUN mkdir -p /data && chown node:node /data
USER node
ENV DATA_DIR=/data PORT=3000
EXPOSE 3000
HEALTHCHECK --interval=30s --timeout=3s CMD node -e "fetch('http://127.0.0.1:3000/readyz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"
# src/threadpool.mjs sizes the thread pool (argon2id) to the container's cores; set UV_THREADPOOL_SIZE to override.
CMD ["node", "--import", "./src/threadpool.mjs", "--import", "tsx", "src/main.ts"]
