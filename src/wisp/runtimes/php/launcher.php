<?php
// Wisp's PHP launcher: one sandboxed instance (a "stem cell").
//
// A child of the Python zygote confines itself (session, cgroup, rlimits, uid) and
// then execs `php -r <this file>` with an empty environment: this file never runs
// with the host's secrets. It speaks Wisp's worker protocol on fd 3 (a 4-byte
// big-endian length, then JSON): `init` once with the code, then any number of
// `run`. After each of them it writes the end-of-activation marker on stdout and
// stderr, then replies. Standard library only.
//
// Everything here lives in the Wisp namespace so that user code is free to define
// any global function or class, `main` included.

namespace Wisp;

const MARKER = "XXX_THE_END_OF_A_WHISK_ACTIVATION_XXX\n";
const JSON_OUT = \JSON_THROW_ON_ERROR | \JSON_UNESCAPED_SLASHES | \JSON_UNESCAPED_UNICODE
    | \JSON_PRESERVE_ZERO_FRACTION;

final class Context
{
    // DigitalOcean's `context`: camelCase as in its docs, and the Python launcher's
    // snake_case names, so one convention works in every language.
    public string $activationId;
    public string $activation_id;
    public string $requestId;
    public string $request_id;
    public string $functionName;
    public string $function_name;
    public string $functionVersion;
    public string $function_version;
    public string $namespace;
    public string $apiHost;
    public string $api_host;
    public string $apiKey;
    public string $api_key;
    public int $deadline;
    public int $attempt;
    public string $traceParent;
    public string $trace_parent;
    public string $traceState;
    public string $trace_state;

    public function __construct(array $meta)
    {
        $this->activationId = $this->activation_id = (string) ($meta['activation_id'] ?? '');
        $this->requestId = $this->request_id = (string) ($meta['transaction_id'] ?? $this->activationId);
        $this->functionName = $this->function_name = (string) ($meta['action_name'] ?? '');
        $this->functionVersion = $this->function_version = (string) ($meta['action_version'] ?? '');
        $this->namespace = (string) ($meta['namespace'] ?? '');
        $this->apiHost = $this->api_host = (string) ($meta['api_host'] ?? '');
        $this->apiKey = $this->api_key = (string) ($meta['api_key'] ?? '');
        $this->deadline = (int) ($meta['deadline'] ?? 0);
        // 1-based: an asynchronous activation retried by its invokeConfig runs again.
        $this->attempt = (int) ($meta['attempt'] ?? 1);
        // W3C trace context of this activation's span (empty when tracing is off).
        $this->traceParent = $this->trace_parent = (string) ($meta['trace_parent'] ?? '');
        $this->traceState = $this->trace_state = (string) ($meta['trace_state'] ?? '');
    }

    public function getRemainingTimeInMillis(): int
    {
        return max(0, intdiv($this->deadline * 1000 - (int) (microtime(true) * 1e6), 1000));
    }

    public function get_remaining_time_in_millis(): int
    {
        return $this->getRemainingTimeInMillis();
    }
}

final class Launcher
{
    /** @var resource */
    private $control;
    private ?\ReflectionFunction $handler = null;
    private bool $withContext = false;
    private bool $initialising = false;
    private string $source = ''; // where a single-file function was written

    public function __construct()
    {
        $this->control = fopen('php://fd/3', 'r+');
        // A fatal error (a duplicate function, an abstract class instantiated at load
        // time) ends the process before `init` can reply: say why, so the deploy's
        // activation names the problem instead of "exited unexpectedly". During a
        // run the process just dies; the error is in the logs either way.
        register_shutdown_function(function (): void {
            $error = error_get_last();
            if ($this->initialising && $error !== null) {
                $this->reply(['ok' => false, 'error' => 'the code failed to load: '
                    . $this->where($error['message'], $error['line'])]);
            }
        });
    }

    public function serve(): void
    {
        while (($message = $this->receive()) !== null) {
            $reply = ($message['op'] ?? '') === 'init' ? $this->init($message) : $this->run($message);
            $this->reply($reply);
        }
    }

    // -- framing ------------------------------------------------------------------

    private function receive(): ?array
    {
        $head = $this->read(4);
        if ($head === null) {
            return null;
        }
        $body = $this->read(unpack('N', $head)[1]);
        return $body === null ? null : json_decode($body, true, 512, \JSON_THROW_ON_ERROR);
    }

    private function read(int $size): ?string
    {
        $data = '';
        while (strlen($data) < $size) {
            $chunk = fread($this->control, $size - strlen($data));
            if ($chunk === false || $chunk === '') {
                return null; // the server went away
            }
            $data .= $chunk;
        }
        return $data;
    }

    private function reply(array|string $reply): void
    {
        // Whatever the function buffered is part of this activation's logs.
        while (ob_get_level() > 0) {
            ob_end_flush();
        }
        flush();
        fwrite(\STDOUT, MARKER);
        fwrite(\STDERR, MARKER);
        $body = is_string($reply) ? $reply : json_encode($reply, JSON_OUT);
        fwrite($this->control, pack('N', strlen($body)) . $body);
        fflush($this->control);
    }

    // -- init ---------------------------------------------------------------------

    private function init(array $message): array
    {
        foreach (($message['env'] ?? []) as $key => $value) {
            putenv("$key=$value");
            $_ENV[$key] = (string) $value;
        }
        $entry = (string) ($message['main'] ?? '') ?: 'main';
        $this->initialising = true;
        try {
            $bundle = (string) ($message['bundle'] ?? '');
            $bundle !== '' ? $this->loadBundle($bundle) : $this->loadSource((string) ($message['code'] ?? ''));
        } catch (\ParseError $err) {
            log_error($err);
            return ['ok' => false, 'error' => 'syntax error in the code: ' . $this->where($err->getMessage(), $err->getLine())];
        } catch (\Throwable $err) {
            log_error($err);
            return ['ok' => false, 'error' => 'the code failed to load: ' . describe($err)];
        } finally {
            $this->initialising = false;
        }
        if (!function_exists($entry)) {
            return ['ok' => false, 'error' => "the code defines no function named '$entry'"];
        }
        $this->handler = new \ReflectionFunction($entry);
        $this->withContext = $this->handler->getNumberOfParameters() >= 2 || $this->handler->isVariadic();
        return ['ok' => true];
    }

    // A single file is written to the instance's private /tmp and required: unlike
    // eval(), that honours `declare(strict_types=1)` and gives errors a line number.
    private function loadSource(string $code): void
    {
        $dir = sys_get_temp_dir() . '/wisp-' . bin2hex(random_bytes(6));
        mkdir($dir, 0700);
        $this->source = "$dir/index.php";
        file_put_contents($this->source, $code);
        chdir($dir);
        require $this->source;
    }

    // A zip: index.php, after Composer's autoloader when the bundle has one.
    private function loadBundle(string $dir): void
    {
        chdir($dir);
        set_include_path($dir . \PATH_SEPARATOR . get_include_path());
        if (is_file("$dir/vendor/autoload.php")) {
            require "$dir/vendor/autoload.php";
        }
        if (!is_file("$dir/index.php")) {
            throw new \RuntimeException('the zip has no index.php');
        }
        require "$dir/index.php";
    }

    private function where(string $message, int $line): string
    {
        return ($this->source !== '' ? str_replace($this->source, 'index.php', $message) : $message)
            . " (line $line)";
    }

    // -- run ----------------------------------------------------------------------

    private function run(array $message): array|string
    {
        if ($this->handler === null) {
            return ['exception' => 'the instance was not initialised'];
        }
        $meta = $message['meta'] ?? [];
        $args = $message['args'] ?? [];
        $vars = [
            '__OW_ACTIVATION_ID' => $meta['activation_id'] ?? '',
            '__OW_TRANSACTION_ID' => $meta['transaction_id'] ?? '',
            '__OW_ACTION_NAME' => '/' . ($meta['namespace'] ?? '') . '/' . ($meta['action_name'] ?? ''),
            '__OW_ACTION_VERSION' => $meta['action_version'] ?? '',
            '__OW_NAMESPACE' => $meta['namespace'] ?? '',
            '__OW_API_HOST' => $meta['api_host'] ?? '',
            '__OW_DEADLINE' => (string) ($meta['deadline'] ?? ''),
            '__OW_ATTEMPT' => (string) ($meta['attempt'] ?? 1),
        ];
        if (isset($meta['api_key'])) {
            $vars['__OW_API_KEY'] = $meta['api_key'];
        }
        foreach ($vars as $key => $value) {
            putenv("$key=$value");
            $_ENV[$key] = (string) $value;
        }
        foreach (['TRACEPARENT' => 'trace_parent', 'TRACESTATE' => 'trace_state'] as $var => $key) {
            if (isset($meta[$key])) {  // never the previous activation's
                putenv("$var={$meta[$key]}");
                $_ENV[$var] = (string) $meta[$key];
            } else {
                putenv($var);
                unset($_ENV[$var]);
            }
        }
        try {
            $value = $this->withContext
                ? $this->handler->invoke($args, new Context($meta))
                : $this->handler->invoke($args);
        } catch (\Throwable $err) {
            log_error($err);
            return ['exception' => describe($err)];
        }
        if (!is_array($value) && !is_object($value)) {
            return ['invalid' => 'the function returned ' . kind_of($value) . ', not an array'];
        }
        if (is_array($value) && $value !== [] && array_is_list($value)) {
            return ['invalid' => 'the function returned a list, not an associative array'];
        }
        try {
            // An empty PHP array is an empty object here: main returns `array`.
            $body = $value === [] ? '{}' : json_encode($value, JSON_OUT);
        } catch (\JsonException $err) {
            return ['invalid' => 'the result is not JSON serializable: ' . $err->getMessage()];
        }
        if ($body[0] !== '{') {
            return ['invalid' => 'the function returned ' . kind_of($value) . ', not an array'];
        }
        return '{"result":' . $body . '}';
    }
}

// -- errors ---------------------------------------------------------------------------

function describe(\Throwable $err): string
{
    return get_class($err) . ': ' . $err->getMessage();
}

function kind_of(mixed $value): string
{
    return match (true) {
        $value === null => 'null',
        is_object($value) => 'an object of class ' . get_class($value),
        default => get_debug_type($value),
    };
}

function log_error(\Throwable $err): void
{
    // The launcher's own frames (the "Command line code") are noise in the user's logs.
    $lines = [describe($err) . ' in ' . $err->getFile() . ':' . $err->getLine()];
    foreach ($err->getTrace() as $i => $frame) {
        $file = $frame['file'] ?? '';
        if ($file === '' || str_contains($file, 'Command line code')) {
            continue;
        }
        $call = ($frame['class'] ?? '') . ($frame['type'] ?? '') . $frame['function'];
        $lines[] = "#$i $file({$frame['line']}): $call()";
    }
    fwrite(\STDERR, implode("\n", $lines) . "\n");
}

(new Launcher())->serve();
