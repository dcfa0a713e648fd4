#!/usr/bin/env bash
# Real DIRAC 9.1.22 services (with the CTADIRAC 3.1.0 extension) on this machine, for the
# adapter tests in tests/dirac/. No Docker: MariaDB and an in-memory OpenSearch run from private
# folders, the DIRAC services are plain `dirac-service` processes speaking dips on 127.0.0.1.
#
#   tests/dirac/services.sh start    install what is missing, then start everything (idempotent)
#   tests/dirac/services.sh stop     stop exactly the processes this script started
#   tests/dirac/services.sh status   say what runs
#   tests/dirac/services.sh env      print the `export` lines a client (or pytest) needs
#
# Everything lives under ${DIRAC_TEST_ROOT:-<repo>/var/dirac}. Delete that folder to start from
# scratch. Needs root on Debian 12 for the apt packages (skipped when they are present).
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
ROOT="${DIRAC_TEST_ROOT:-$REPO/var/dirac}"
VENV="$ROOT/venv"
PY="$VENV/bin/python"
BASE_PYTHON="${DIRAC_TEST_BASE_PYTHON:-/usr/bin/python3}"

DIRAC_VERSION="9.1.22"
CTADIRAC_VERSION="3.1.0"

DB_PORT="${DIRAC_TEST_DB_PORT:-13306}"
OS_PORT="${DIRAC_TEST_OPENSEARCH_PORT:-19200}"
DB_USER="Dirac"
DB_PASSWORD="dirac-test-password"
VO="fdtest"
USER_NAME="ciuser"
CERT_ORG="Failover Dashboard Test"

# System/Service:port, in start order (the Configuration Server first: the others read it).
SERVICES=(
  "Configuration/Server:9135"
  "Transformation/TransformationManager:9131"
  "Production/ProductionManager:9180"
  "WorkloadManagement/JobManager:9132"
  "WorkloadManagement/JobMonitoring:9130"
  "WorkloadManagement/JobStateUpdate:9136"
  "DataManagement/FileCatalog:9137"
  "RequestManagement/ReqManager:9140"
)
DATABASES=(
  "TransformationDB:TransformationSystem"
  "ProductionDB:ProductionSystem"
  "JobDB:WorkloadManagementSystem"
  "JobLoggingDB:WorkloadManagementSystem"
  "TaskQueueDB:WorkloadManagementSystem"
  "PilotAgentsDB:WorkloadManagementSystem"
  "SandboxMetadataDB:WorkloadManagementSystem"
  "FileCatalogDB:DataManagementSystem"
  "ReqDB:RequestManagementSystem"
)
# The systems written into the configuration, each with its databases and services above.
SYSTEMS=(Configuration Transformation Production WorkloadManagement DataManagement RequestManagement)

RUN="$ROOT/run"
LOG="$ROOT/log"
CERTS="$ROOT/certs"
CADIR="$ROOT/certificates"
MYSQL_DIR="$ROOT/mysql"
SOCKET="$MYSQL_DIR/mysqld.sock"
PROXY="$ROOT/proxy/prod.pem"
PROXY_NOPM="$ROOT/proxy/user.pem"
CLIENT_CFG="$ROOT/client/dirac.cfg"

say() { printf '[dirac-services] %s\n' "$*" >&2; }
die() { say "ERROR: $*"; exit 1; }

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

wait_port() {  # port seconds name logfile
  local i
  for ((i = 0; i < $2 * 5; i++)); do
    port_open "$1" && return 0
    sleep 0.2
  done
  say "$3 did not open port $1 within $2 s; last log lines:"
  tail -n 30 "$4" >&2 || true
  return 1
}

pid_alive() { [[ -f "$1" ]] && kill -0 "$(cat "$1")" 2>/dev/null; }

# -- installation (idempotent) -----------------------------------------------------------------
install_apt() {
  local missing=()
  command -v mariadbd >/dev/null || missing+=(mariadb-server)
  command -v mariadb >/dev/null || missing+=(mariadb-client)
  [[ -f /usr/include/mariadb/mysql.h ]] || missing+=(libmariadb-dev)
  command -v pkg-config >/dev/null || missing+=(pkg-config)
  command -v gcc >/dev/null || missing+=(build-essential)
  command -v swig >/dev/null || missing+=(swig)
  [[ -f /usr/include/openssl/ssl.h ]] || missing+=(libssl-dev)
  command -v openssl >/dev/null || missing+=(openssl)
  if [[ "$BASE_PYTHON" == /usr/bin/* ]]; then
    "$BASE_PYTHON" -c 'import ensurepip' 2>/dev/null || missing+=(python3-venv)
    [[ -n "$(ls /usr/include/python3*/Python.h 2>/dev/null)" ]] || missing+=(python3-dev)
  fi
  ((${#missing[@]})) || return 0
  say "apt-get install ${missing[*]}"
  [[ $(id -u) == 0 ]] || die "need root to install ${missing[*]}"
  # Waits for apt's and dpkg's locks (minutes, and says so) instead of failing at once.
  DEBIAN_FRONTEND=noninteractive "$REPO/scripts/apt-get-wait" update -q >/dev/null
  DEBIAN_FRONTEND=noninteractive "$REPO/scripts/apt-get-wait" install -y -q --no-install-recommends "${missing[@]}" >/dev/null
}

install_venv() {
  local stamp="$VENV/.installed-dirac-$DIRAC_VERSION-ctadirac-$CTADIRAC_VERSION"
  if [[ -f "$stamp" ]]; then
    install_product
    return 0
  fi
  say "creating $VENV (DIRAC $DIRAC_VERSION, CTADIRAC $CTADIRAC_VERSION); about a minute"
  rm -rf "$VENV"
  "$BASE_PYTHON" -m venv "$VENV"
  "$PY" -m pip install -q --upgrade pip wheel setuptools
  "$PY" -m pip install -q --no-deps "DIRAC==$DIRAC_VERSION"
  # DIRAC's own requirement list with the `server` extra, minus gfal2-python (does not build
  # against Debian's gfal2 and none of these services use it).
  "$PY" - >"$VENV/dirac-requirements.txt" <<'EOF'
from importlib.metadata import requires
from pip._vendor.packaging.requirements import Requirement
out = []
for line in requires("DIRAC"):
    r = Requirement(line)
    if r.name.lower() in {"gfal2-python"}:
        continue
    if r.marker and not r.marker.evaluate({"extra": "server"}):
        continue
    r.marker = None
    out.append(str(r))
print("\n".join(out))
EOF
  "$PY" -m pip install -q -r "$VENV/dirac-requirements.txt" osmem-server pytest
  "$PY" -m pip install -q --no-deps "ctadirac==$CTADIRAC_VERSION"
  "$PY" -m pip install -q ruamel.yaml shellescape typer
  install_product force
  touch "$stamp"
}

# The DIRAC-marked tests and `manage.py dirac check` run with this venv's python: it also needs the
# product. With a pyproject, install it editable (with its dependencies); else put the repo on path.
install_product() {
  local site stamp="$VENV/.product-installed"
  site="$("$PY" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
  if [[ -f "$REPO/pyproject.toml" ]]; then
    rm -f "$site/failover-dashboard-repo.pth"
    if [[ "${1:-}" == force || ! -f "$stamp" || "$REPO/pyproject.toml" -nt "$stamp" ]]; then
      say "installing the product (editable, with its test extra) into $VENV"
      "$PY" -m pip install -q -e "$REPO[test]" && touch "$stamp"
    fi
  else
    echo "$REPO" >"$site/failover-dashboard-repo.pth"
    "$PY" -c 'import django' 2>/dev/null || "$PY" -m pip install -q "Django>=5.2,<6"
  fi
}

# -- certificates ------------------------------------------------------------------------------
make_certs() {
  [[ -f "$CERTS/user/usercert.pem" && -f "$CADIR/ca.cert.pem" ]] && return 0
  say "making a test CA, host and user certificates"
  rm -rf "$CERTS" "$CADIR"
  mkdir -p "$CERTS/ca/newcerts" "$CERTS/host" "$CERTS/user" "$CADIR"
  : >"$CERTS/ca/index.txt"
  echo 1000 >"$CERTS/ca/serial"
  cat >"$CERTS/ca/openssl.cnf" <<EOF
[ ca ]
default_ca = test_ca
[ test_ca ]
dir = $CERTS/ca
new_certs_dir = \$dir/newcerts
database = \$dir/index.txt
serial = \$dir/serial
private_key = \$dir/ca.key.pem
certificate = \$dir/ca.cert.pem
default_md = sha256
default_days = 3650
policy = anything
copy_extensions = copy
unique_subject = no
[ anything ]
organizationName = optional
commonName = supplied
[ req ]
distinguished_name = dn
prompt = no
[ dn ]
O = $CERT_ORG
CN = $CERT_ORG CA
[ v3_ca ]
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always,issuer
basicConstraints = critical, CA:true
keyUsage = critical, digitalSignature, cRLSign, keyCertSign
[ host_cert ]
basicConstraints = CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth, clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid, issuer
subjectAltName = DNS:localhost, DNS:$(hostname -f 2>/dev/null || hostname), IP:127.0.0.1
[ user_cert ]
basicConstraints = CA:FALSE
keyUsage = critical, nonRepudiation, digitalSignature, keyEncipherment
extendedKeyUsage = clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid, issuer
EOF
  local cnf="$CERTS/ca/openssl.cnf"
  openssl req -config "$cnf" -x509 -new -nodes -newkey rsa:2048 -days 3650 -extensions v3_ca \
    -keyout "$CERTS/ca/ca.key.pem" -out "$CERTS/ca/ca.cert.pem" 2>/dev/null
  openssl req -new -nodes -newkey rsa:2048 -subj "/O=$CERT_ORG/CN=localhost" \
    -keyout "$CERTS/host/hostkey.pem" -out "$CERTS/host/host.csr" 2>/dev/null
  openssl ca -batch -config "$cnf" -extensions host_cert -in "$CERTS/host/host.csr" \
    -out "$CERTS/host/hostcert.pem" -notext 2>/dev/null
  openssl req -new -nodes -newkey rsa:2048 -subj "/O=$CERT_ORG/CN=$USER_NAME" \
    -keyout "$CERTS/user/userkey.pem" -out "$CERTS/user/user.csr" 2>/dev/null
  openssl ca -batch -config "$cnf" -extensions user_cert -in "$CERTS/user/user.csr" \
    -out "$CERTS/user/usercert.pem" -notext 2>/dev/null
  chmod 400 "$CERTS/host/hostkey.pem" "$CERTS/user/userkey.pem"
  cp "$CERTS/ca/ca.cert.pem" "$CADIR/ca.cert.pem"
  ln -sf ca.cert.pem "$CADIR/$(openssl x509 -hash -noout -in "$CADIR/ca.cert.pem").0"
}

# -- configuration -----------------------------------------------------------------------------
write_config() {
  mkdir -p "$ROOT/etc" "$(dirname "$CLIENT_CFG")"
  local host_dn="/O=$CERT_ORG/CN=localhost" user_dn="/O=$CERT_ORG/CN=$USER_NAME"
  local cfg="$ROOT/etc/dirac.cfg" svc sys name port urls=""
  {
    cat <<EOF
DIRAC
{
  VirtualOrganization = $VO
  Configuration
  {
    Name = FailoverDashboardTest
    Master = yes
    Servers = dips://localhost:9135/Configuration/Server
  }
  Security
  {
    CertFile = $CERTS/host/hostcert.pem
    KeyFile = $CERTS/host/hostkey.pem
    CALocation = $CADIR
  }
}
DiracX
{
  DisabledVOs = $VO
}
LocalSite
{
  Site = DIRAC.Test.org
}
Operations
{
  Defaults
  {
  }
}
Registry
{
  DefaultGroup = prod
  VO
  {
    $VO
    {
      VOAdmin = $USER_NAME
    }
  }
  Users
  {
    $USER_NAME
    {
      DN = $user_dn
    }
  }
  Groups
  {
    prod
    {
      Users = $USER_NAME
      Properties = ProductionManagement, JobAdministrator, NormalUser
      VO = $VO
    }
    # A group without ProductionManagement, for the "manage.py dirac check" tests.
    user
    {
      Users = $USER_NAME
      Properties = NormalUser
      VO = $VO
    }
  }
  Hosts
  {
    localhost
    {
      DN = $host_dn
      Properties = TrustedHost, CSAdministrator, ProductionManagement, JobAdministrator, Operator, FullDelegation, ProxyManagement, SiteManager
    }
  }
}
Resources
{
  Sites
  {
    DIRAC
    {
      DIRAC.Test.org
      {
        Name = Test site
      }
    }
  }
}
Systems
{
  Databases
  {
    Host = 127.0.0.1
    Port = $DB_PORT
    User = $DB_USER
    Password = $DB_PASSWORD
  }
  NoSQLDatabases
  {
    Host = 127.0.0.1
    Port = $OS_PORT
    SSL = False
    CRT = False
    User = admin
    Password = admin
  }
EOF
    for sys in "${SYSTEMS[@]}"; do
      echo "  $sys"
      echo "  {"
      echo "    Databases"
      echo "    {"
      local db
      for db in "${DATABASES[@]}"; do
        # "FileCatalogDB:DataManagementSystem" belongs to the DataManagement system.
        [[ "${db#*:}" == "${sys}System" ]] &&
          printf '      %s\n      {\n        DBName = %s\n      }\n' "${db%%:*}" "${db%%:*}"
      done
      echo "    }"
      echo "    Services"
      echo "    {"
      urls=""
      for svc in "${SERVICES[@]}"; do
        name="${svc%%:*}"; port="${svc##*:}"
        [[ "${name%%/*}" == "$sys" ]] || continue
        printf '      %s\n      {\n        Port = %s\n        Protocol = dips\n' "${name#*/}" "$port"
        # DIRAC 9's master CS defaults to its Tornado handler; we serve it over dips.
        [[ "$name" == Configuration/Server ]] &&
          printf '        HandlerPath = DIRAC/ConfigurationSystem/Service/ConfigurationHandler.py\n'
        # The DIRAC File Catalog (DFC) on FileCatalogDB.sql's tables: DIRAC's default managers.
        # No security manager: the test user may register, tag and remove anywhere.
        [[ "$name" == DataManagement/FileCatalog ]] && cat <<'DFC'
        UserGroupManager = UserAndGroupManagerDB
        SEManager = SEManagerDB
        SecurityManager = NoSecurityManager
        DirectoryManager = DirectoryLevelTree
        FileManager = FileManager
        UniqueGUID = False
        GlobalReadAccess = True
        LFNPFNConvention = Strong
        ResolvePFN = True
        DefaultUmask = 509
        VisibleStatus = AprioriGood
DFC
        printf '        Authorization\n        {\n          Default = authenticated\n        }\n      }\n'
        urls+="      ${name#*/} = dips://localhost:$port/$name"$'\n'
      done
      echo "    }"
      echo "    URLs"
      echo "    {"
      printf '%s' "$urls"
      echo "    }"
      echo "  }"
    done
    echo "}"
  } >"$cfg"
  # The master Configuration Server serves etc/<Configuration Name>.cfg, not dirac.cfg: same content.
  cp "$cfg" "$ROOT/etc/FailoverDashboardTest.cfg"

  cat >"$CLIENT_CFG" <<EOF
DIRAC
{
  Configuration
  {
    Servers = dips://localhost:9135/Configuration/Server
  }
  Security
  {
    CALocation = $CADIR
  }
}
DiracX
{
  DisabledVOs = $VO
}
EOF
}

# -- databases ---------------------------------------------------------------------------------
mysql_root() { mariadb --no-defaults --protocol=socket --socket="$SOCKET" -uroot "$@"; }

start_mariadb() {
  mkdir -p "$MYSQL_DIR" "$RUN" "$LOG"
  local fresh=0
  if [[ ! -d "$MYSQL_DIR/data/mysql" ]]; then
    say "initialising MariaDB in $MYSQL_DIR/data"
    mariadb-install-db --no-defaults --datadir="$MYSQL_DIR/data" --user=root \
      --auth-root-authentication-method=socket --skip-test-db >"$LOG/mariadb-install.log" 2>&1 ||
      { tail "$LOG/mariadb-install.log" >&2; die "mariadb-install-db failed"; }
    fresh=1
  fi
  if ! pid_alive "$RUN/mariadb.pid"; then
    port_open "$DB_PORT" && die "port $DB_PORT is taken by another program (set DIRAC_TEST_DB_PORT)"
    setsid mariadbd --no-defaults --datadir="$MYSQL_DIR/data" --port="$DB_PORT" \
      --bind-address=127.0.0.1 --socket="$SOCKET" --user=root --skip-name-resolve \
      --innodb-buffer-pool-size=64M --innodb-flush-log-at-trx-commit=0 \
      --log-error="$LOG/mariadb.log" </dev/null >>"$LOG/mariadb.log" 2>&1 &
    echo $! >"$RUN/mariadb.pid"
    wait_port "$DB_PORT" 30 MariaDB "$LOG/mariadb.log"
  fi
  # Only the databases that are missing (all on a fresh folder; the newer ones on an older set-up):
  # the others keep their contents.
  local db missing=()
  for db in "${DATABASES[@]}"; do
    ((fresh)) || ! mysql_root -e "USE ${db%%:*}" 2>/dev/null && missing+=("$db")
  done
  ((${#missing[@]} == 0)) || create_databases "${missing[@]}"
}

create_databases() {  # "Name:System" ...
  say "creating the DIRAC databases ${*%%:*}"
  local sqldir db
  sqldir="$("$PY" -c 'import DIRAC, os; print(os.path.dirname(DIRAC.__file__))')"
  {
    echo "CREATE USER IF NOT EXISTS '$DB_USER'@'127.0.0.1' IDENTIFIED BY '$DB_PASSWORD';"
    echo "CREATE USER IF NOT EXISTS '$DB_USER'@'localhost' IDENTIFIED BY '$DB_PASSWORD';"
    for db in "$@"; do
      echo "DROP DATABASE IF EXISTS ${db%%:*}; CREATE DATABASE ${db%%:*};"
      echo "GRANT ALL PRIVILEGES ON ${db%%:*}.* TO '$DB_USER'@'127.0.0.1';"
      echo "GRANT ALL PRIVILEGES ON ${db%%:*}.* TO '$DB_USER'@'localhost';"
    done
    echo "FLUSH PRIVILEGES;"
  } | mysql_root
  for db in "$@"; do
    # ReqDB.sql only selects the database: RequestDB creates its tables (SQLAlchemy) at start-up.
    mysql_root "${db%%:*}" <"$sqldir/${db#*:}/DB/${db%%:*}.sql"
  done
}

start_opensearch() {
  pid_alive "$RUN/opensearch.pid" && return 0
  port_open "$OS_PORT" && die "port $OS_PORT is taken by another program (set DIRAC_TEST_OPENSEARCH_PORT)"
  local bin
  bin="$("$PY" -c 'import osmem_server; print(osmem_server.resolve_binary())')"
  setsid "$bin" -addr "127.0.0.1:$OS_PORT" -no-stdin-watch </dev/null >"$LOG/opensearch.log" 2>&1 &
  echo $! >"$RUN/opensearch.pid"
  wait_port "$OS_PORT" 20 osmem-server "$LOG/opensearch.log"
}

start_services() {
  local svc name port pidf logf started=()
  for svc in "${SERVICES[@]}"; do
    name="${svc%%:*}"; port="${svc##*:}"
    pidf="$RUN/${name//\//_}.pid"; logf="$LOG/${name//\//_}.log"
    pid_alive "$pidf" && continue
    port_open "$port" && die "port $port ($name) is taken by another program"
    DIRAC_ROOT_PATH="$ROOT" X509_CERT_DIR="$CADIR" DIRACSYSCONFIG="$ROOT/etc/dirac.cfg" \
      setsid "$VENV/bin/dirac-service" "$name" </dev/null >"$logf" 2>&1 &
    echo $! >"$pidf"
    started+=("$name:$port")
    # The others read the Configuration Server at start-up: wait for it first.
    [[ "$name" == Configuration/Server ]] && wait_port "$port" 60 "$name" "$logf"
  done
  for svc in "${started[@]}"; do
    name="${svc%%:*}"; port="${svc##*:}"
    wait_port "$port" 90 "$name" "$LOG/${name//\//_}.log"
  done
}

make_proxies() {
  mkdir -p "$ROOT/proxy"
  local group out
  for group in prod user; do
    out="$ROOT/proxy/$group.pem"
    # Remake when missing or expiring within an hour.
    if [[ -f "$out" ]] && openssl x509 -in "$out" -noout -checkend 3600 >/dev/null 2>&1; then
      continue
    fi
    DIRACSYSCONFIG="$CLIENT_CFG" X509_CERT_DIR="$CADIR" \
      "$VENV/bin/dirac-proxy-init" -g "$group" -C "$CERTS/user/usercert.pem" \
      -K "$CERTS/user/userkey.pem" --out "$out" -N -x >"$LOG/proxy-$group.log" 2>&1 ||
      { tail "$LOG/proxy-$group.log" >&2; die "dirac-proxy-init -g $group failed"; }
  done
}

# -- commands ----------------------------------------------------------------------------------
cmd_start() {
  local t0=$SECONDS
  mkdir -p "$ROOT" "$RUN" "$LOG"
  install_apt
  install_venv
  make_certs
  write_config
  start_mariadb
  start_opensearch
  start_services
  make_proxies
  say "DIRAC services ready in $((SECONDS - t0)) s; eval \"\$($0 env)\" to use them"
}

cmd_stop() {
  local f pid i
  shopt -s nullglob
  # Services first, the stores they use last.
  for f in "$RUN"/*_*.pid "$RUN/opensearch.pid" "$RUN/mariadb.pid"; do
    [[ -f "$f" ]] || continue
    pid="$(cat "$f")"
    if kill -0 "$pid" 2>/dev/null; then
      kill "$pid" 2>/dev/null || true
      for ((i = 0; i < 100; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
      done
      kill -0 "$pid" 2>/dev/null && kill -9 "$pid" 2>/dev/null || true
      say "stopped $(basename "$f" .pid) (pid $pid)"
    fi
    rm -f "$f"
  done
}

cmd_status() {
  local rc=0 svc name port
  check() {  # label pidfile port
    if pid_alive "$2" && port_open "$3"; then
      printf '%-40s running (pid %s, port %s)\n' "$1" "$(cat "$2")" "$3"
    else
      printf '%-40s not running\n' "$1"
      rc=1
    fi
  }
  check MariaDB "$RUN/mariadb.pid" "$DB_PORT"
  check "osmem-server (job parameters)" "$RUN/opensearch.pid" "$OS_PORT"
  for svc in "${SERVICES[@]}"; do
    name="${svc%%:*}"; port="${svc##*:}"
    check "$name" "$RUN/${name//\//_}.pid" "$port"
  done
  return $rc
}

cmd_env() {
  cat <<EOF
export DIRAC_TEST_SERVICES=1
export DIRAC_TEST_ROOT=$ROOT
export DIRAC_TEST_PYTHON=$PY
export DIRACSYSCONFIG=$CLIENT_CFG
export X509_CERT_DIR=$CADIR
export X509_USER_PROXY=$PROXY
export DIRAC_TEST_PROXY_NO_PRODUCTION_MANAGEMENT=$PROXY_NOPM
export DIRAC_TEST_DB_HOST=127.0.0.1
export DIRAC_TEST_DB_PORT=$DB_PORT
export DIRAC_TEST_DB_USER=$DB_USER
export DIRAC_TEST_DB_PASSWORD=$DB_PASSWORD
EOF
}

case "${1:-}" in
  start) cmd_start ;;
  stop) cmd_stop ;;
  status) cmd_status ;;
  env) cmd_env ;;
  *) echo "usage: $0 start|stop|status|env" >&2; exit 2 ;;
esac
