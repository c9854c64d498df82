/**
 * Finding a WebGPU device: the optional `webgpu` npm package (Dawn's Node bindings) is imported
 * here, with a dynamic `import()`, and nowhere else, so a process that never asks for the GPU never
 * loads it (and a machine without it installed runs every other backend). Returns the device and
 * a description of its adapter, or the reason there is none, in one line naming what to install.
 */

/// <reference types="@webgpu/types" />

/** What a log line, a metric label and the worker's `join` say about the adapter. */
export interface AdapterSummary {
  /** e.g. "nvidia: NVIDIA H200" or "mesa: llvmpipe (software)". */
  readonly name: string;
  readonly vendor: string;
  readonly architecture: string;
  readonly description: string;
  /** A CPU implementation (Mesa's lavapipe, SwiftShader): correct, not fast. */
  readonly software: boolean;
}

export interface OpenedGpu {
  readonly device: GPUDevice;
  readonly adapter: AdapterSummary;
}

export type GpuOpenResult = { readonly ok: true; readonly gpu: OpenedGpu } | { readonly ok: false; readonly reason: string };

interface WebGpuModule {
  create(options: string[]): GPU;
}

const INSTALL_HINT =
  'install a GPU driver with Vulkan, or for a CPU adapter Mesa\'s lavapipe (Debian 12: add the bookworm-backports suite, then apt-get install -t bookworm-backports mesa-vulkan-drivers)';

async function loadModule(): Promise<WebGpuModule | string> {
  try {
    const name = 'webgpu';
    const mod = (await import(name)) as WebGpuModule;
    if (typeof mod.create !== 'function') return `the 'webgpu' package does not export create()`;
    return mod;
  } catch (error) {
    return `the optional 'webgpu' package could not be loaded (${(error as Error).message.split('\n')[0]}); install it with npm install webgpu@0.6.2`;
  }
}

export function summarizeAdapter(info: GPUAdapterInfo, fallback: boolean): AdapterSummary {
  const vendor = info.vendor || 'unknown vendor';
  const architecture = info.architecture || '';
  const description = info.description || info.device || '';
  const software = fallback || architecture === 'software' || /llvmpipe|lavapipe|swiftshader/i.test(`${description} ${info.device}`);
  const label = description.split(' ').slice(0, 1).join(' ').replace(/:$/, '') || info.device || architecture;
  return { name: `${vendor}: ${label}${software ? ' (software)' : ''}`, vendor, architecture, description, software };
}

let opened: Promise<GpuOpenResult> | null = null;
/**
 * The Dawn instance. It must stay reachable for as long as its devices are used: once the GPU
 * object is collected, Dawn tears the instance down under the live device and the process crashes
 * (a segmentation fault on the next submit), so it is held here for the life of the process.
 */
let instance: GPU | null = null;

/**
 * The process's WebGPU device, opened once (later calls share it). `requestDevice` asks for the
 * adapter's own limits on buffer sizes and storage bindings rather than the small defaults.
 */
export function openGpu(): Promise<GpuOpenResult> {
  opened ??= (async (): Promise<GpuOpenResult> => {
    const mod = await loadModule();
    if (typeof mod === 'string') return { ok: false, reason: mod };
    let adapter: GPUAdapter | null;
    try {
      instance ??= mod.create([]);
      adapter = await instance.requestAdapter({ powerPreference: 'high-performance' });
    } catch (error) {
      return { ok: false, reason: `no WebGPU adapter (${(error as Error).message}); ${INSTALL_HINT}` };
    }
    if (!adapter) return { ok: false, reason: `no WebGPU adapter was found; ${INSTALL_HINT}` };
    const limits = adapter.limits;
    const device = await adapter.requestDevice({
      requiredLimits: {
        maxStorageBufferBindingSize: limits.maxStorageBufferBindingSize,
        maxBufferSize: limits.maxBufferSize,
        maxStorageBuffersPerShaderStage: limits.maxStorageBuffersPerShaderStage,
        maxComputeWorkgroupStorageSize: limits.maxComputeWorkgroupStorageSize,
        maxComputeInvocationsPerWorkgroup: limits.maxComputeInvocationsPerWorkgroup,
      },
    });
    const info = adapter.info;
    return { ok: true, gpu: { device, adapter: summarizeAdapter(info, info.isFallbackAdapter === true) } };
  })();
  return opened;
}

/** Whether a WebGPU adapter exists here, and which (for `--backend auto` and for skipping tests with the reason). */
export async function probeGpu(): Promise<{ readonly adapter: AdapterSummary | null; readonly reason: string | null }> {
  const result = await openGpu();
  return result.ok ? { adapter: result.gpu.adapter, reason: null } : { adapter: null, reason: result.reason };
}
